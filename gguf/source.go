package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/rwkvkit/rwkvkit/format"
)

func init() {
	format.Register("gguf", match, Open, ".gguf")
}

func match(head []byte) bool { return bytes.HasPrefix(head, []byte(Magic)) }

// Open reads the GGUF RWKV-6 or RWKV-7 model in the size bytes of r and
// returns its tensors in the web-rwkv layout (see the package comment),
// reading lazily from r, which must stay open while they are used. Other
// architectures, and tensor types rwkvkit cannot decode, are refused with
// an error saying which.
func Open(r io.ReaderAt, size int64) (*format.Source, error) {
	f, err := ReadFile(r, size)
	if err != nil {
		return nil, err
	}
	src, err := toSource(f, r)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return src, nil
}

// Version tells which RWKV version a GGUF architecture is.
func Version(architecture string) (format.Version, error) {
	switch architecture {
	case "rwkv6":
		return format.V6, nil
	case "rwkv7":
		return format.V7, nil
	case "":
		return "", fmt.Errorf("%w: the file has no general.architecture", ErrNotRWKV)
	}
	return "", fmt.Errorf("%w: its architecture is %q (rwkvkit reads rwkv6 and rwkv7)", ErrNotRWKV, architecture)
}

// keyUint reads the unsigned integer {arch}.key.
func keyUint(f *File, key string, required bool) (int64, error) {
	v, ok := f.Get(key)
	if !ok {
		if required {
			return 0, fmt.Errorf("%w: no %s", ErrNotRWKV, key)
		}
		return 0, nil
	}
	n, ok := v.Uint()
	if !ok || n > 1<<31 {
		return 0, fmt.Errorf("%w: %s is %v (%v)", ErrMalformed, key, v, v.Type)
	}
	return int64(n), nil
}

func toSource(f *File, r io.ReaderAt) (*format.Source, error) {
	a := f.Architecture()
	ver, err := Version(a)
	if err != nil {
		return nil, err
	}
	C, err := keyUint(f, a+".embedding_length", true)
	if err != nil {
		return nil, err
	}
	N, err := keyUint(f, a+".wkv.head_size", true)
	if err != nil {
		return nil, err
	}
	if C == 0 || N == 0 || C%N != 0 {
		return nil, fmt.Errorf("%w: heads of %d do not divide the embedding %d", ErrMalformed, N, C)
	}
	rescale, err := keyUint(f, a+".rescale_every_n_layers", false)
	if err != nil {
		return nil, err
	}
	// The metadata (arrays by type and length) and, since the tensors are
	// seen decoded, a count of the file's tensor types ("F32: 268, Q4_K: 12").
	src := &format.Source{Metadata: map[string]string{}}
	for _, kv := range f.KV {
		src.Metadata[kv.Key] = kv.Value.String()
	}
	src.Metadata[TensorTypesKey] = typeCounts(f)
	add := func(name string, t *TensorInfo, shape []int64, rows int64, row0 int64, scale float32) error {
		tn, err := tensorOf(r, f, t, name, shape, rows, row0, scale)
		if err != nil {
			return err
		}
		src.Tensors = append(src.Tensors, tn)
		return nil
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if _, ok := types[t.Type]; !ok || (types[t.Type].decode == nil && plainDType(t.Type) == format.Invalid) {
			return nil, fmt.Errorf("%w: tensor %q is %v, which rwkvkit does not decode", ErrUnsupported, t.Name, t.Type)
		}
		n := t.elements()
		if l, rest, ok := splitLayer(t.Name, "blk"); ok && rest == fusedName {
			parts := fusedParts[ver]
			k := int64(len(parts))
			if len(t.Dims) == 0 || t.Dims[0] != C || n != k*C {
				return nil, fmt.Errorf("%w: tensor %q has dimensions %v, want [%d 1 1 %d]", ErrNotRWKV, t.Name, t.Dims, C, k)
			}
			for j, p := range parts {
				if err := add(fmt.Sprintf("blocks.%d.%s", l, p), t, []int64{1, 1, C}, k, int64(j), 1); err != nil {
					return nil, err
				}
			}
			continue
		}
		web, kind, ok := fromGGUF(ver, t.Name)
		if !ok {
			return nil, fmt.Errorf("%w: tensor %q is not one of llama.cpp's %s tensors", ErrNotRWKV, t.Name, a)
		}
		l, rest, _ := splitLayer(t.Name, "blk")
		if ver == format.V7 && l == 0 && (rest == "time_mix_v0.weight" || rest == "time_mix_v1.weight" || rest == "time_mix_v2.weight") {
			continue // copies of a0–a2 that llama.cpp wants and never uses
		}
		shape := t.Shape()
		switch kind {
		case vector:
			if n != C {
				return nil, fmt.Errorf("%w: tensor %q has dimensions %v, want %d elements", ErrNotRWKV, t.Name, t.Dims, C)
			}
			shape = []int64{1, 1, C}
		case heads:
			if n != C {
				return nil, fmt.Errorf("%w: tensor %q has dimensions %v, want %d elements", ErrNotRWKV, t.Name, t.Dims, C)
			}
			shape = []int64{C / N, N}
		}
		scale := float32(1)
		if rescale > 0 && (rest == "time_mix_output.weight" || rest == "channel_mix_value.weight") {
			// The converter divided these by 2^(layer/rescale) so that
			// float16 activations stay in range, and llama.cpp halves the
			// residual every rescale layers to match; multiplying back by a
			// power of two is exact and gives the model's own weights.
			scale = float32(math.Ldexp(1, l/int(rescale)))
		}
		if err := add(web, t, shape, 1, 0, scale); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// elements is the tensor's element count (checked by the reader).
func (t *TensorInfo) elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// plainDType is the format type of an unquantized ggml type, or Invalid.
func plainDType(t Type) format.DType {
	switch t {
	case TypeF32:
		return format.F32
	case TypeF16:
		return format.F16
	case TypeBF16:
		return format.BF16
	case TypeF64:
		return format.F64
	case TypeI8:
		return format.I8
	case TypeI16:
		return format.I16
	case TypeI32:
		return format.I32
	case TypeI64:
		return format.I64
	}
	return format.Invalid
}

// tensorOf makes the tensor name of the given shape from row row0 of the
// rows equal parts of t (a part is whole rows, since a ggml row is whole
// blocks). Plain float types are read as they are; block types, and
// tensors scaled by a power of two, are decoded to float32 as read.
func tensorOf(r io.ReaderAt, f *File, t *TensorInfo, name string, shape []int64, rows, row0 int64, scale float32) (*format.Tensor, error) {
	partBytes := t.Size / rows
	off := f.DataOffset + t.Offset + row0*partBytes
	n := t.elements() / rows
	if dt := plainDType(t.Type); dt != format.Invalid && scale == 1 {
		return format.NewTensor(name, dt, shape, func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(r, off, partBytes)), nil
		})
	}
	rowLen := int64(1)
	if len(t.Dims) > 0 {
		rowLen = t.Dims[0]
	}
	return format.NewTensor(name, format.F32, shape, func() (io.ReadCloser, error) {
		return &decoder{r: io.NewSectionReader(r, off, partBytes), typ: t.Type, name: t.Name,
			rowLen: rowLen, left: n, scale: scale}, nil
	})
}

// decoder streams a tensor's values as float32 bytes, decoding a bounded
// number of rows at a time, so memory follows a chunk, not the tensor.
type decoder struct {
	r      io.Reader
	typ    Type
	name   string
	rowLen int64
	left   int64 // elements not yet decoded
	scale  float32

	raw  []byte
	vals []float32
	out  []byte
	pos  int
}

// decodeChunk is about how many elements a decoder reads at a time.
const decodeChunk = 1 << 16

func (d *decoder) Read(p []byte) (int, error) {
	if d.pos == len(d.out) {
		if d.left == 0 {
			return 0, io.EOF
		}
		rows := max(1, decodeChunk/d.rowLen)
		n := min(d.left, rows*d.rowLen)
		rb, err := d.typ.RowBytes(n)
		if err != nil {
			return 0, fmt.Errorf("gguf: tensor %q: %w", d.name, err)
		}
		if int64(cap(d.raw)) < rb {
			d.raw, d.vals, d.out = make([]byte, rb), make([]float32, n), make([]byte, 4*n)
		}
		raw, vals := d.raw[:rb], d.vals[:n]
		if err := format.ReadFull(d.r, raw); err != nil {
			return 0, fmt.Errorf("gguf: tensor %q: %w", d.name, err)
		}
		if err := decodeRow(vals, raw, d.typ); err != nil {
			return 0, fmt.Errorf("tensor %q: %w", d.name, err)
		}
		d.out = d.out[:4*n]
		for i, v := range vals {
			binary.LittleEndian.PutUint32(d.out[4*i:], math.Float32bits(v*d.scale))
		}
		d.left -= n
		d.pos = 0
	}
	n := copy(p, d.out[d.pos:])
	d.pos += n
	return n, nil
}

func (d *decoder) Close() error { return nil }

// TensorTypesKey is the Source metadata key under which Open lists how many
// tensors of each ggml type the file holds.
const TensorTypesKey = "gguf.tensor_types"

func typeCounts(f *File) string {
	n := map[Type]int{}
	var order []Type
	for _, t := range f.Tensors {
		if n[t.Type] == 0 {
			order = append(order, t.Type)
		}
		n[t.Type]++
	}
	slices.Sort(order)
	parts := make([]string, len(order))
	for i, t := range order {
		parts[i] = fmt.Sprintf("%v: %d", t, n[t])
	}
	return strings.Join(parts, ", ")
}
