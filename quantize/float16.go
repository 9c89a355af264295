package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/rwkvkit/rwkvkit/format"
)

// Float16 reads a floating-point tensor as float16 bits for the quantizer:
// F16 as it is (non-finite values are left for the quantizer to report),
// BF16, F32 and F64 converted by format.ToF16, refusing ±Inf, NaN and
// values that overflow float16 (which that rule keeps or makes ±Inf). Memory: the tensor's bytes plus, for other types than F16, the
// float16 copy.
func Float16(t *format.Tensor) ([]uint16, error) {
	if !t.DType.Float() {
		return nil, &format.TensorError{Tensor: t.Name, Err: fmt.Errorf("%v is not a floating-point type", t.DType)}
	}
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	out, err := ToFloat16(b, t.DType, t.Len())
	if err != nil {
		return nil, format.TensorErr(t.Name, err)
	}
	return out, nil
}

// ToFloat16 converts n little-endian elements of type dt in b to float16
// bits, as Float16 does. For F16 the result may share b's memory.
func ToFloat16(b []byte, dt format.DType, n int64) ([]uint16, error) {
	es := int64(dt.Size())
	if es == 0 || !dt.Float() || n < 0 || int64(len(b)) < n*es {
		return nil, fmt.Errorf("%d bytes of %v for %d elements", len(b), dt, n)
	}
	if dt == format.F16 {
		if n > 0 && uintptr(unsafe.Pointer(&b[0]))%2 == 0 && littleEndian {
			return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), n), nil
		}
		out := make([]uint16, n)
		return out, format.ToF16(out, b, dt)
	}
	out := make([]uint16, n)
	err := parallelBlocks(int((n+format.Int8BlockSize-1)/format.Int8BlockSize), 0, func(b0, b1 int) error {
		lo, hi := int64(b0)*format.Int8BlockSize, min(int64(b1)*format.Int8BlockSize, n)
		if err := format.ToF16(out[lo:hi], b[lo*es:hi*es], dt); err != nil {
			return err
		}
		// The quantizer takes finite values only: refuse what format.ToF16
		// keeps (±Inf, NaN) or makes ±Inf (values beyond float16's range).
		for i := lo; i < hi; i++ {
			if out[i]&0x7C00 != 0x7C00 {
				continue
			}
			var f float64
			switch dt {
			case format.BF16:
				f = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16))
			case format.F32:
				f = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
			case format.F64:
				f = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return &ValueError{Index: i, Value: f, Err: ErrNotFinite}
			}
			return &ValueError{Index: i, Value: f, Err: ErrOutOfRange}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
