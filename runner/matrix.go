package runner

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/rwkvkit/rwkvkit/format"
)

// A matrix is a weight matrix [rows, cols] in its storage precision. The
// products read it through two methods: mulVec for one input vector, tile
// for a run of rows as float32 (decoded into scratch unless stored so),
// which the matrix-matrix product then reuses across all tokens.
type matrix interface {
	dims() (rows, cols int)
	// mulVec sets out[i] = row(r0+i)·x for i < len(out).
	mulVec(out, x []float32, r0 int, sc *scratch)
	// tile returns rows [r0, r1) as row-major float32, in sc if it must decode.
	tile(r0, r1 int, sc *scratch) []float32
	// bytes is the size of the stored weights.
	bytes() int64
	dtype() format.DType
}

// scratch is one worker's reusable buffer.
type scratch struct{ f []float32 }

func (s *scratch) floats(n int) []float32 {
	if cap(s.f) < n {
		s.f = make([]float32, n)
	}
	return s.f[:n]
}

type denseF32 struct {
	rows, cols int
	w          []float32
}

func (m *denseF32) dims() (int, int)                      { return m.rows, m.cols }
func (m *denseF32) bytes() int64                          { return int64(len(m.w)) * 4 }
func (m *denseF32) dtype() format.DType                   { return format.F32 }
func (m *denseF32) tile(r0, r1 int, _ *scratch) []float32 { return m.w[r0*m.cols : r1*m.cols] }
func (m *denseF32) mulVec(out, x []float32, r0 int, _ *scratch) {
	dotRowsF32(out, m.w[r0*m.cols:], m.cols, x, m.cols)
}

// dense16 holds float16 or bfloat16 weights as their bits.
type dense16 struct {
	rows, cols int
	w          []uint16
	bf         bool
}

func (m *dense16) dims() (int, int) { return m.rows, m.cols }
func (m *dense16) bytes() int64     { return int64(len(m.w)) * 2 }
func (m *dense16) dtype() format.DType {
	if m.bf {
		return format.BF16
	}
	return format.F16
}

func (m *dense16) tile(r0, r1 int, sc *scratch) []float32 {
	dst := sc.floats((r1 - r0) * m.cols)
	if m.bf {
		widenBF16(dst, m.w[r0*m.cols:r1*m.cols])
	} else {
		widenF16(dst, m.w[r0*m.cols:r1*m.cols])
	}
	return dst
}

func (m *dense16) mulVec(out, x []float32, r0 int, _ *scratch) {
	if m.bf {
		dotRowsBF16(out, m.w[r0*m.cols:], m.cols, x, m.cols)
	} else {
		dotRowsF16(out, m.w[r0*m.cols:], m.cols, x, m.cols)
	}
}

// newMatrix keeps the bytes of t, a [rows, cols] matrix, in t's precision.
// Dense float32 and 16-bit weights are read straight into their final
// slices, so a tensor costs its size once and no conversion pass.
func newMatrix(t *format.Tensor, rows, cols int) (matrix, error) {
	n := rows * cols
	switch t.DType {
	case format.F32:
		w := make([]float32, n)
		if err := readValues(t, w); err != nil {
			return nil, err
		}
		return &denseF32{rows, cols, w}, nil
	case format.F16, format.BF16:
		w := make([]uint16, n)
		if err := readValues(t, w); err != nil {
			return nil, err
		}
		return &dense16{rows, cols, w, t.DType == format.BF16}, nil
	}
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	switch t.DType {
	case format.F64:
		w := make([]float32, n)
		if err := format.DecodeFloat32(w, b, t.DType); err != nil {
			return nil, err
		}
		return &denseF32{rows, cols, w}, nil
	case format.Int8Block:
		return newInt8Matrix(b, rows, cols)
	case format.NF4Block, format.SF4Block:
		return newNF4Matrix(t.DType, b, rows, cols)
	}
	return nil, fmt.Errorf("%w: %v", errDType, t.DType)
}

// hostLittleEndian reports whether the machine stores values as the files do.
var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// readValues fills w with t's little-endian values, reading them straight
// into w's memory on a little-endian machine.
func readValues[T uint16 | float32](t *format.Tensor, w []T) error {
	size := int(unsafe.Sizeof(*new(T))) * len(w)
	if int64(size) != t.Size() {
		return fmt.Errorf("%d bytes for %d values", t.Size(), len(w))
	}
	if !hostLittleEndian {
		b, err := t.Bytes()
		if err != nil {
			return err
		}
		for i := range w {
			switch p := any(&w[i]).(type) {
			case *uint16:
				*p = binary.LittleEndian.Uint16(b[2*i:])
			case *float32:
				*p = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
		return nil
	}
	r, err := t.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	buf := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), size)
	if err := format.ReadFull(r, buf); err != nil {
		return err
	}
	return nil
}
