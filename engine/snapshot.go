package engine

import (
	"fmt"

	"github.com/rwkvkit/rwkvkit/format"
)

// A Snapshot is a state in host memory, laid out the same for every
// engine: per layer, the previous token's normalised input of the time mix
// (Embed values), that of the channel mix (Embed values), then the time-mix
// memory: for v4 aa, bb and pp per channel (3×Embed), for v5–v7 one
// HeadSize×HeadSize matrix per head, row-major as docs/rwkv-math.md
// indexes it.
type Snapshot struct {
	Version                        format.Version
	Layers, Embed, Heads, HeadSize int
	Data                           []float32
}

// NewSnapshot returns the initial state of a model: zeros, except v4's pp
// at −1e30 (the running maximum of the exponents).
func NewSnapshot(info format.ModelInfo) *Snapshot {
	s := &Snapshot{Version: info.Version, Layers: info.Layers, Embed: info.Embed, Heads: info.Heads, HeadSize: info.HeadSize}
	s.Data = make([]float32, s.Layers*s.Stride())
	if s.Version == format.V4 {
		for l := range s.Layers {
			pp := s.Mem(l)[2*s.Embed:]
			for c := range pp {
				pp[c] = -1e30
			}
		}
	}
	return s
}

// MemSize is the number of time-mix memory values of one layer.
func (s *Snapshot) MemSize() int {
	if s.Version == format.V4 {
		return 3 * s.Embed
	}
	return s.Heads * s.HeadSize * s.HeadSize
}

// Stride is the number of values of one layer.
func (s *Snapshot) Stride() int { return 2*s.Embed + s.MemSize() }

// Layer returns the values of layer l.
func (s *Snapshot) Layer(l int) []float32 { return s.Data[l*s.Stride() : (l+1)*s.Stride()] }

// AttShift is the previous token's normalised time-mix input of layer l.
func (s *Snapshot) AttShift(l int) []float32 { return s.Layer(l)[:s.Embed] }

// FFNShift is the previous token's normalised channel-mix input of layer l.
func (s *Snapshot) FFNShift(l int) []float32 { return s.Layer(l)[s.Embed : 2*s.Embed] }

// Mem is the time-mix memory of layer l.
func (s *Snapshot) Mem(l int) []float32 { return s.Layer(l)[2*s.Embed:] }

// Clone returns an independent copy of s.
func (s *Snapshot) Clone() *Snapshot {
	c := *s
	c.Data = append([]float32(nil), s.Data...)
	return &c
}

// Fits reports, as an error wrapping [ErrStateMismatch], whether s is a
// state of a model described by info.
func (s *Snapshot) Fits(info format.ModelInfo) error {
	if s == nil {
		return fmt.Errorf("%w: no state", ErrStateMismatch)
	}
	if s.Version != info.Version || s.Layers != info.Layers || s.Embed != info.Embed || s.Heads != info.Heads || s.HeadSize != info.HeadSize ||
		len(s.Data) != s.Layers*s.Stride() {
		return fmt.Errorf("%w: the state is RWKV %s, %d layers, embedding %d, %d heads of %d; the model is RWKV %s, %d layers, embedding %d, %d heads of %d",
			ErrStateMismatch, s.Version, s.Layers, s.Embed, s.Heads, s.HeadSize, info.Version, info.Layers, info.Embed, info.Heads, info.HeadSize)
	}
	return nil
}
