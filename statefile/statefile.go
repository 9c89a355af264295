// Package statefile reads and writes RWKV recurrent states as files, so
// that a sequence can stop after its prompt and resume later without
// reading the prompt again, and so that a state-tuned file can start one.
//
// [Save] writes an [engine.Snapshot] as a state artifact: an .rkv file
// (package serialize, docs/ARTIFACT.md §11) holding every layer's token
// shifts and time-mix memory in float32, so a saved state resumes bit for
// bit. [Load] reads any state file by its content: a state artifact, or a
// state-tuned .pth or .st file holding blocks.N.att.time_state per layer,
// as web-rwkv and ai00 load them (their token shifts start at zero, as
// there).
package statefile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	_ "github.com/rwkvkit/rwkvkit/pth" // state-tuned files
	_ "github.com/rwkvkit/rwkvkit/safetensors"
	"github.com/rwkvkit/rwkvkit/serialize"
)

// ErrNotState is wrapped by Load's error for a file that holds no state.
var ErrNotState = errors.New("not a state file")

// Tensor names of a state, per layer l.
func shiftName(l int, half string) string { return fmt.Sprintf("blocks.%d.%s.shift", l, half) }
func memName(l int) string                { return fmt.Sprintf("blocks.%d.att.time_state", l) }

// Save writes s to path as a state artifact, through a temporary file that
// is renamed at the end; an existing file is replaced only if force is set.
func Save(ctx context.Context, path string, s *engine.Snapshot, force bool) error {
	src, opts, err := artifact(s)
	if err != nil {
		return err
	}
	return serialize.WriteFile(ctx, path, src, force, opts)
}

// Write writes s to w as a state artifact.
func Write(w io.Writer, s *engine.Snapshot) error {
	src, opts, err := artifact(s)
	if err != nil {
		return err
	}
	return serialize.Write(w, src, opts)
}

// artifact lays s out as the tensors of a state artifact: per layer the
// time-mix and channel-mix shifts [C] and the memory, [H, N, N] in the
// RWKV-LM orientation ([head][value][key]) for v5–v7, [3, C] (aa, bb, pp)
// for v4.
func artifact(s *engine.Snapshot) (*format.Source, *serialize.Options, error) {
	info := shape(s)
	if err := s.Fits(info); err != nil || s.Layers <= 0 || s.Embed <= 0 {
		return nil, nil, fmt.Errorf("statefile: a malformed state: %v layers, embedding %d, %d values", s.Layers, s.Embed, len(s.Data))
	}
	src := &format.Source{}
	add := func(name string, shape []int64, v []float32) {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		t, _ := format.NewTensor(name, format.F32, shape, format.BytesOpener(b)) // shapes are small and valid
		src.Tensors = append(src.Tensors, t)
	}
	C := int64(s.Embed)
	for l := range s.Layers {
		add(shiftName(l, "att"), []int64{C}, s.AttShift(l))
		add(shiftName(l, "ffn"), []int64{C}, s.FFNShift(l))
		if s.Version == format.V4 {
			add(memName(l), []int64{3, C}, s.Mem(l))
			continue
		}
		mem := slices.Clone(s.Mem(l))
		if s.Version.StateKeyMajor() {
			transposeHeads(mem, s.Heads, s.HeadSize)
		}
		add(memName(l), []int64{int64(s.Heads), int64(s.HeadSize), int64(s.HeadSize)}, mem)
	}
	st := &serialize.StateInfo{Version: s.Version, Layout: format.LayoutRWKVLM,
		Layers: s.Layers, Embed: s.Embed, Heads: s.Heads, HeadSize: s.HeadSize}
	return src, &serialize.Options{State: st, Metadata: map[string]string{}}, nil
}

// shape is the model shape a snapshot describes.
func shape(s *engine.Snapshot) format.ModelInfo {
	return format.ModelInfo{Version: s.Version, Layers: s.Layers, Embed: s.Embed, Heads: s.Heads, HeadSize: s.HeadSize}
}

// transposeHeads transposes each N×N matrix of m in place.
func transposeHeads(m []float32, H, N int) {
	for h := range H {
		S := m[h*N*N : (h+1)*N*N]
		for i := range N {
			for j := i + 1; j < N; j++ {
				S[i*N+j], S[j*N+i] = S[j*N+i], S[i*N+j]
			}
		}
	}
}

// Load reads the state in the file at path for a model described by info,
// recognising the file by its content: a state artifact (see [Save]) gives
// the state it holds; a state-tuned file (a .pth in RWKV-LM's layout, or a
// safetensors file as web-rwkv's converter writes it) gives its time_state
// as every layer's memory, with zero token shifts. The state must fit the
// model (errors.Is(err, engine.ErrStateMismatch) otherwise). Errors name the
// file; memory is bounded by the model's state.
func Load(path string, info format.ModelInfo) (*engine.Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("statefile: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("statefile: %w", err)
	}
	s, err := read(f, fi.Size(), path, info)
	if err != nil {
		return nil, fmt.Errorf("statefile: %s: %w", path, err)
	}
	return s, nil
}

func read(r io.ReaderAt, size int64, name string, info format.ModelInfo) (*engine.Snapshot, error) {
	h, err := serialize.ReadHeader(r, size)
	if err == nil {
		if h.State == nil {
			return nil, fmt.Errorf("%w: it is an .rkv model artifact", ErrNotState)
		}
		st := h.State
		if st.Version != info.Version || st.Layers != info.Layers || st.Embed != info.Embed || st.Heads != info.Heads || st.HeadSize != info.HeadSize {
			return nil, fmt.Errorf("%w: the file holds a state of RWKV %s, %d layers, embedding %d, %d heads of %d; the model is RWKV %s, %d layers, embedding %d, %d heads of %d",
				engine.ErrStateMismatch, st.Version, st.Layers, st.Embed, st.Heads, st.HeadSize, info.Version, info.Layers, info.Embed, info.Heads, info.HeadSize)
		}
		src, err := h.Source(r)
		if err != nil {
			return nil, err
		}
		return FromSource(src, st.Layout, info, true)
	}
	if !errors.Is(err, serialize.ErrNotArtifact) {
		return nil, err
	}
	src, err := format.OpenReaderAt(r, name)
	if err != nil {
		return nil, err
	}
	layout := format.LayoutWebRWKV
	if src.Format == "pth" {
		layout = format.LayoutRWKVLM
	}
	return FromSource(src, layout, info, false)
}

// FromSource returns the state whose tensors src holds for a model
// described by info: each layer's blocks.N.att.time_state, in the given
// layout, and, when full is set, its blocks.N.att.shift and
// blocks.N.ffn.shift (a state artifact); otherwise the shifts are zero.
func FromSource(src *format.Source, layout format.Layout, info format.ModelInfo, full bool) (*engine.Snapshot, error) {
	s := engine.NewSnapshot(info)
	if len(s.Data) == 0 {
		return nil, fmt.Errorf("%w: a model of %d layers has no state", engine.ErrStateMismatch, info.Layers)
	}
	if !full && info.Version == format.V4 {
		return nil, fmt.Errorf("%w: RWKV 4 has no state-tuned files (its memory is not a time_state)", engine.ErrStateMismatch)
	}
	if src.Lookup(memName(0)) == nil {
		return nil, fmt.Errorf("%w: no tensor %q", ErrNotState, memName(0))
	}
	if t := src.Lookup(memName(info.Layers)); t != nil {
		return nil, fmt.Errorf("%w: the file has a %s, the model %d layers", engine.ErrStateMismatch, t.Name, info.Layers)
	}
	H, N, C := int64(info.Heads), int64(info.HeadSize), int64(info.Embed)
	memShape := []int64{H, N, N}
	if info.Version == format.V4 {
		memShape = []int64{3, C}
	}
	for l := range info.Layers {
		if err := readInto(src, memName(l), memShape, s.Mem(l)); err != nil {
			return nil, err
		}
		if info.Version != format.V4 && (layout == format.LayoutWebRWKV) != info.Version.StateKeyMajor() {
			transposeHeads(s.Mem(l), info.Heads, info.HeadSize)
		}
		if !full {
			continue
		}
		if err := readInto(src, shiftName(l, "att"), []int64{C}, s.AttShift(l)); err != nil {
			return nil, err
		}
		if err := readInto(src, shiftName(l, "ffn"), []int64{C}, s.FFNShift(l)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// readInto reads the floating-point tensor name, of shape want (leading
// dimensions of 1 aside), into dst.
func readInto(src *format.Source, name string, want []int64, dst []float32) error {
	t := src.Lookup(name)
	if t == nil {
		return fmt.Errorf("%w: no tensor %q", engine.ErrStateMismatch, name)
	}
	got := t.Shape
	for len(got) > len(want) && got[0] == 1 {
		got = got[1:]
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("%w: tensor %q has shape %v, the model's state %v", engine.ErrStateMismatch, name, t.Shape, want)
	}
	v, err := t.Float32()
	if err != nil {
		return err
	}
	copy(dst, v)
	return nil
}
