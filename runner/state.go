package runner

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/rwkvkit/rwkvkit/format"
)

// A State is the recurrent memory of one sequence: per layer the previous
// token's normalised inputs of both halves (token shift) and the time-mix
// memory (v4: aa, bb, pp per channel; v5–v7: one N×N matrix per head).
type State struct {
	version                        format.Version
	layers, embed, heads, headSize int
	data                           []float32
}

// ErrStateMismatch is returned when a state does not fit a model or a saved
// state does not fit the state it is loaded into.
var ErrStateMismatch = errors.New("state does not match the model")

// NewState returns the initial state: zeros, except v4's pp at −1e30.
func (m *Model) NewState() *State {
	i := m.info
	s := &State{version: i.Version, layers: i.Layers, embed: i.Embed, heads: i.Heads, headSize: i.HeadSize}
	s.data = make([]float32, s.layers*s.stride())
	if s.version == format.V4 {
		for l := range s.layers {
			pp := s.mem(l)[2*s.embed:]
			for c := range pp {
				pp[c] = -1e30
			}
		}
	}
	return s
}

func (s *State) memSize() int {
	if s.version == format.V4 {
		return 3 * s.embed
	}
	return s.heads * s.headSize * s.headSize
}

func (s *State) stride() int { return 2*s.embed + s.memSize() }

func (s *State) layer(l int) []float32 { return s.data[l*s.stride() : (l+1)*s.stride()] }

// attShift and ffnShift are the previous token's normalised inputs of layer l.
func (s *State) attShift(l int) []float32 { return s.layer(l)[:s.embed] }
func (s *State) ffnShift(l int) []float32 { return s.layer(l)[s.embed : 2*s.embed] }

// mem is the time-mix memory of layer l.
func (s *State) mem(l int) []float32 { return s.layer(l)[2*s.embed:] }

// Clone returns an independent copy of s.
func (s *State) Clone() *State {
	c := *s
	c.data = append([]float32(nil), s.data...)
	return &c
}

func (s *State) fits(m *Model) error {
	i := m.info
	if s == nil || s.version != i.Version || s.layers != i.Layers || s.embed != i.Embed || s.heads != i.Heads || s.headSize != i.HeadSize ||
		len(s.data) != s.layers*s.stride() {
		return ErrStateMismatch
	}
	return nil
}

// stateMagic starts a saved state; the byte after it is the layout version.
const (
	stateMagic   = "RWKVSTAT"
	stateVersion = 1
	stateHeader  = len(stateMagic) + 1 + 1 + 8 + 4*4
)

// MarshalBinary saves the state: a header (magic, layout version, RWKV
// version, layers, embedding, heads, head size) then the float32 values,
// little-endian.
func (s *State) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, stateHeader+4*len(s.data))
	b = append(b, stateMagic...)
	b = append(b, stateVersion, byte(len(s.version)))
	var v [8]byte
	copy(v[:], s.version)
	b = append(b, v[:]...)
	for _, d := range []int{s.layers, s.embed, s.heads, s.headSize} {
		b = binary.LittleEndian.AppendUint32(b, uint32(d))
	}
	for _, f := range s.data {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b, nil
}

// UnmarshalBinary restores a state saved by MarshalBinary. Into a state
// made by NewState it loads only a state of the same model shape; into a
// zero State it loads any well-formed one.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) < stateHeader || string(b[:len(stateMagic)]) != stateMagic {
		return errors.New("runner: not a saved RWKV state")
	}
	p := b[len(stateMagic):]
	if p[0] != stateVersion {
		return fmt.Errorf("runner: saved state has layout version %d, this build reads %d", p[0], stateVersion)
	}
	n := int(p[1])
	if n > 8 {
		return errors.New("runner: saved state has a malformed header")
	}
	t := State{version: format.Version(p[2 : 2+n])}
	p = p[10:]
	dims := [4]int{}
	for i := range dims {
		d := binary.LittleEndian.Uint32(p[4*i:])
		if d > 1<<20 {
			return errors.New("runner: saved state has a malformed header")
		}
		dims[i] = int(d)
	}
	t.layers, t.embed, t.heads, t.headSize = dims[0], dims[1], dims[2], dims[3]
	if (t.version == format.V4) != (t.heads == 0) || t.heads*t.headSize > t.embed {
		return errors.New("runner: saved state has a malformed header")
	}
	p = p[16:]
	if int64(t.layers)*int64(t.stride())*4 != int64(len(p)) {
		return fmt.Errorf("runner: saved state holds %d bytes of values, its header says %d layers of %d", len(p), t.layers, t.stride())
	}
	if s.data != nil && (s.version != t.version || s.layers != t.layers || s.embed != t.embed || s.heads != t.heads || s.headSize != t.headSize) {
		return fmt.Errorf("runner: %w: saved RWKV %s, %d layers, embedding %d, %d heads of %d; this state is RWKV %s, %d layers, embedding %d, %d heads of %d",
			ErrStateMismatch, t.version, t.layers, t.embed, t.heads, t.headSize, s.version, s.layers, s.embed, s.heads, s.headSize)
	}
	t.data = make([]float32, len(p)/4)
	for i := range t.data {
		t.data[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	*s = t
	return nil
}
