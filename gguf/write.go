package gguf

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/format"
)

// ErrNoArchitecture: the model's RWKV version has no llama.cpp architecture
// (RWKV-4 and RWKV-5 do not run there).
var ErrNoArchitecture = errors.New("llama.cpp has no architecture for this RWKV version (it runs RWKV-6 and RWKV-7)")

// Options control [Write].
type Options struct {
	// Type of the large matrices: TypeF32 (the zero value), TypeF16 or
	// TypeQ8_0. Vectors, norms and the tensors llama.cpp keeps in float32
	// (v6 time_first and its LoRA, v6 and v7 w1/w2, the fused mixes) are
	// float32 whatever it is, as in llama.cpp's converter; a Q8_0 matrix
	// whose rows are not whole blocks of 32 falls back to F16 as there.
	Type Type
	// Name is general.name (empty: "RWKV").
	Name string
	// Progress, if set, is called as the file is written with the bytes
	// written so far and the file's total size.
	Progress func(written, total int64)

	// NoSync has WriteFile commit the file without waiting for it to reach
	// the disk (atomicfile.Options.NoSync): faster, but not durable.
	NoSync bool
}

// fileTypes are llama.cpp's general.file_type values (LlamaFileType).
var fileTypes = map[Type]uint32{TypeF32: 0, TypeF16: 1, TypeQ8_0: 7}

// f32Tensors are kept in float32 by the converter whatever the output type.
var f32Tensors = []string{"time_mix_first.weight", "time_mix_w1.weight", "time_mix_w2.weight",
	"time_mix_decay_w1.weight", "time_mix_decay_w2.weight", fusedName}

// outTensor is one tensor of the file being written.
type outTensor struct {
	name  string
	shape []int64 // numpy order
	typ   Type
	size  int64
	// values returns the tensor's values in numpy order.
	values func() ([]float32, error)
}

// Write writes src, an RWKV-6 or RWKV-7 model in any layout rwkvkit reads,
// to w as a GGUF file that llama.cpp runs: the keys, tensor names, shapes,
// tensor types and vocabulary of llama.cpp's own converter. Tensors are
// read, converted and written one at a time.
func Write(w io.Writer, src *format.Source, opts *Options) error {
	if opts == nil {
		opts = &Options{}
	}
	l, err := newLayout(src, opts)
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := l.write(w, opts); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// WriteFile writes src to path as Write does, through a temporary file
// committed at the end (package atomicfile): on any error, or when ctx is
// cancelled, nothing is left behind, and an existing file is replaced only
// with force. The model is checked before the file is created.
func WriteFile(ctx context.Context, path string, src *format.Source, force bool, opts *Options) error {
	if err := format.CheckExtension(path, "gguf"); err != nil {
		return err
	}
	if opts == nil {
		opts = &Options{}
	}
	l, err := newLayout(src, opts)
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return atomicfile.WriteFile(ctx, path, atomicfile.Options{Force: force, NoSync: opts.NoSync}, func(w io.Writer) error {
		if err := l.write(w, opts); err != nil {
			return fmt.Errorf("gguf: %w", err)
		}
		return nil
	})
}

// fileLayout is a model checked and planned for writing.
type fileLayout struct {
	tensors []*outTensor
	kvs     []KV
}

func newLayout(src *format.Source, opts *Options) (*fileLayout, error) {
	ft, ok := fileTypes[opts.Type]
	if !ok {
		return nil, fmt.Errorf("cannot write tensors as %v (F32, F16 or Q8_0)", opts.Type)
	}
	info, err := format.Detect(src)
	if err != nil {
		return nil, err
	}
	if info.Version != format.V6 && info.Version != format.V7 {
		return nil, fmt.Errorf("RWKV v%s: %w", info.Version, ErrNoArchitecture)
	}
	web, err := format.WebRWKV(src)
	if err != nil {
		return nil, err
	}
	tensors, err := plan(web, info, opts.Type)
	if err != nil {
		return nil, err
	}
	kvs, err := metadata(info, opts, ft)
	if err != nil {
		return nil, err
	}
	return &fileLayout{tensors, kvs}, nil
}

func (l *fileLayout) write(w io.Writer, opts *Options) error {
	tensors, kvs := l.tensors, l.kvs
	bw := bufio.NewWriterSize(w, 1<<20)
	e := &encoder{w: bw}
	e.raw([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.value(kv.Value)
	}
	var off int64
	for _, t := range tensors {
		e.str(t.name)
		e.u32(uint32(len(t.shape)))
		for i := len(t.shape) - 1; i >= 0; i-- {
			e.u64(uint64(t.shape[i]))
		}
		e.u32(uint32(t.typ))
		e.u64(uint64(off))
		off += pad(t.size, DefaultAlignment)
	}
	e.pad()
	total := e.n + off
	for _, t := range tensors {
		if e.err != nil {
			break
		}
		b, err := t.encode()
		if err != nil {
			return err
		}
		e.raw(b)
		e.pad()
		if opts.Progress != nil {
			opts.Progress(e.n, total)
		}
	}
	if e.err != nil {
		return e.err
	}
	return bw.Flush()
}

// plan lists the output tensors in the source's order, renamed, reshaped
// and typed as the converter does.
func plan(web *format.Source, info format.ModelInfo, want Type) ([]*outTensor, error) {
	ver := info.Version
	C := int64(info.Embed)
	parts := fusedParts[ver]
	var out []*outTensor
	add := func(name string, shape []int64, values func() ([]float32, error)) error {
		typ := tensorType(name, shape, want)
		n, err := format.NumElements(shape)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		size, err := typ.RowBytes(n)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		out = append(out, &outTensor{name: name, shape: shape, typ: typ, size: size, values: values})
		return nil
	}
	fused := map[int]int{} // layer → mixes seen
	for _, t := range web.Tensors {
		if !t.DType.Float() {
			return nil, fmt.Errorf("tensor %q is %v: only float models are written to GGUF (dequantize it first)", t.Name, t.DType)
		}
		l, rest, inLayer := splitLayer(t.Name, "blocks")
		if inLayer && indexOf(parts, rest) >= 0 {
			if t.Len() != C {
				return nil, fmt.Errorf("tensor %q has shape %v, want %d elements", t.Name, t.Shape, C)
			}
			if fused[l]++; fused[l] == len(parts) {
				ts := make([]*format.Tensor, len(parts))
				for j, p := range parts {
					ts[j] = web.Lookup(fmt.Sprintf("blocks.%d.%s", l, p))
				}
				if err := add(fmt.Sprintf("blk.%d.%s", l, fusedName), []int64{int64(len(parts)), 1, 1, C}, concat(ts)); err != nil {
					return nil, err
				}
			}
			continue
		}
		if ver == format.V7 && inLayer && l == 0 && (rest == "att.v0" || rest == "att.v1" || rest == "att.v2") {
			continue // replaced by copies of a0–a2 below, as the converter does
		}
		name, kind, err := toGGUF(ver, t.Name)
		if err != nil {
			return nil, err
		}
		shape := t.Shape
		if kind != sameShape {
			if t.Len() != C {
				return nil, fmt.Errorf("tensor %q has shape %v, want %d elements", t.Name, t.Shape, C)
			}
			shape = []int64{C}
		}
		if ver == format.V7 && inLayer && l == 0 && strings.HasPrefix(name, fmt.Sprintf("blk.0.time_mix_a")) {
			// llama.cpp requires v0–v2 in layer 0, which has none.
			if err := add(strings.Replace(name, "time_mix_a", "time_mix_v", 1), shape, t.Float32); err != nil {
				return nil, err
			}
		}
		if err := add(name, shape, t.Float32); err != nil {
			return nil, err
		}
	}
	for l := range info.Layers {
		if fused[l] != len(parts) {
			return nil, fmt.Errorf("layer %d has %d of the %d token-shift mixes (%s)", l, fused[l], len(parts), strings.Join(parts, ", "))
		}
	}
	return out, nil
}

func indexOf(s []string, x string) int {
	for i, v := range s {
		if v == x {
			return i
		}
	}
	return -1
}

// concat returns the values of ts one after the other.
func concat(ts []*format.Tensor) func() ([]float32, error) {
	return func() ([]float32, error) {
		var all []float32
		for _, t := range ts {
			v, err := t.Float32()
			if err != nil {
				return nil, err
			}
			all = append(all, v...)
		}
		return all, nil
	}
}

// tensorType is the converter's choice of type for a tensor
// (ModelBase.prepare_tensors).
func tensorType(name string, shape []int64, want Type) Type {
	if len(shape) <= 1 || strings.HasSuffix(name, "_norm.weight") || !strings.HasSuffix(name, ".weight") {
		return TypeF32
	}
	for _, s := range f32Tensors {
		if strings.HasSuffix(name, "."+s) {
			return TypeF32
		}
	}
	if want == TypeQ8_0 && shape[len(shape)-1]%32 != 0 {
		return TypeF16
	}
	return want
}

// encode reads the tensor's values and returns its bytes.
func (t *outTensor) encode() ([]byte, error) {
	v, err := t.values()
	if err != nil {
		return nil, err
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("tensor %q: element %d is %v", t.name, i, x)
		}
	}
	b := make([]byte, t.size)
	switch t.typ {
	case TypeF32:
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
	case TypeF16:
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], format.F32ToF16(x))
		}
	case TypeQ8_0:
		encodeQ8_0(b, v)
	}
	return b, nil
}

// encoder writes little-endian GGUF fields, keeping the first error and
// the number of bytes written (for the alignment padding).
type encoder struct {
	w   io.Writer
	n   int64
	err error
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	n, err := e.w.Write(b)
	e.n += int64(n)
	e.err = err
}

func (e *encoder) u32(v uint32) { e.raw(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *encoder) u64(v uint64) { e.raw(binary.LittleEndian.AppendUint64(nil, v)) }

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.raw([]byte(s))
}

func (e *encoder) pad() { e.raw(make([]byte, pad(e.n, DefaultAlignment)-e.n)) }

func (e *encoder) value(v Value) {
	e.u32(uint32(v.Type))
	switch x := v.V.(type) {
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case string:
		e.str(x)
	case []string:
		e.u32(uint32(String))
		e.u64(uint64(len(x)))
		for _, s := range x {
			e.str(s)
		}
	case []int32:
		e.u32(uint32(Int32))
		e.u64(uint64(len(x)))
		for _, i := range x {
			e.u32(uint32(i))
		}
	default:
		e.err = fmt.Errorf("cannot write a metadata value of %T", v.V)
	}
}
