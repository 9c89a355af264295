package format

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/x448/float16"
)

// DType is the element type of a tensor's stored bytes.
type DType uint8

// The element types. The quantized kinds store blocks, not elements; their
// byte layout is defined by package quantize and sized by [DType.StorageSize].
const (
	Invalid DType = iota
	Bool
	U8
	I8
	I16
	U16
	F16
	BF16
	I32
	U32
	F32
	F64
	I64
	U64
	Int8Block // web-rwkv Int8: blocks of 128 with a float16 (min, max) pair each
	NF4Block  // web-rwkv NF4: blocks of 64 with a float16 absmax each
	SF4Block  // web-rwkv SF4: NF4's layout with Student-t (ν = 5) code values
)

var dtypeNames = [...]string{
	Invalid:   "INVALID",
	Bool:      "BOOL",
	U8:        "U8",
	I8:        "I8",
	I16:       "I16",
	U16:       "U16",
	F16:       "F16",
	BF16:      "BF16",
	I32:       "I32",
	U32:       "U32",
	F32:       "F32",
	F64:       "F64",
	I64:       "I64",
	U64:       "U64",
	Int8Block: "Q8_128",
	NF4Block:  "NF4_64",
	SF4Block:  "SF4_64",
}

var dtypeSizes = [...]int{
	Bool: 1, U8: 1, I8: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
	I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
}

// String returns the safetensors name of d ("F16", "BF16", …), or the
// rwkvkit name of a quantized kind.
func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// ParseDType returns the DType named s (as [DType.String] spells it).
func ParseDType(s string) (DType, error) {
	for i, n := range dtypeNames {
		if n == s && DType(i) != Invalid {
			return DType(i), nil
		}
	}
	return Invalid, fmt.Errorf("unknown dtype %q", s)
}

// Size is the byte size of one element, or 0 for quantized kinds and Invalid.
func (d DType) Size() int {
	if int(d) < len(dtypeSizes) {
		return dtypeSizes[d]
	}
	return 0
}

// Quantized reports whether d is a block-quantized kind.
func (d DType) Quantized() bool { return d == Int8Block || d == NF4Block || d == SF4Block }

// Float reports whether d is one of the floating-point kinds F16, BF16, F32, F64.
func (d DType) Float() bool { return d == F16 || d == BF16 || d == F32 || d == F64 }

// Block sizes of the quantized kinds, as web-rwkv uses them.
const (
	Int8BlockSize = 128
	NF4BlockSize  = 64
	SF4BlockSize  = NF4BlockSize
)

// StorageSize is the number of bytes that n elements of d occupy, checked
// against overflow. For Int8Block it is n codes followed by a float16 (min,
// max) pair per block; for NF4Block n/2 bytes of nibbles (rounded up)
// followed by a float16 absmax per block.
func (d DType) StorageSize(n int64) (int64, error) {
	if n < 0 {
		return 0, fmt.Errorf("negative element count %d", n)
	}
	switch d {
	case Int8Block:
		blocks := (n + Int8BlockSize - 1) / Int8BlockSize
		return checkedAdd(n, blocks*4)
	case NF4Block, SF4Block:
		blocks := (n + NF4BlockSize - 1) / NF4BlockSize
		return checkedAdd((n+1)/2, blocks*2)
	}
	s := int64(d.Size())
	if s == 0 {
		return 0, fmt.Errorf("dtype %v has no size", d)
	}
	if n > math.MaxInt64/s {
		return 0, fmt.Errorf("%d elements of %v overflow", n, d)
	}
	return n * s, nil
}

func checkedAdd(a, b int64) (int64, error) {
	if a > math.MaxInt64-b {
		return 0, fmt.Errorf("size overflows")
	}
	return a + b, nil
}

// DecodeFloat32 widens len(dst) elements of src (of type d, little-endian)
// into dst. It handles F32, F16, BF16 and F64 exactly (F64 rounds to nearest).
func DecodeFloat32(dst []float32, src []byte, d DType) error {
	n := len(dst)
	if d.Size() == 0 || len(src) < n*d.Size() {
		return fmt.Errorf("decode %v: %d bytes for %d elements", d, len(src), n)
	}
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	default:
		return fmt.Errorf("decode %v: not a floating-point type", d)
	}
	return nil
}

// F16ToF32 returns the float32 value of the float16 bits h (exact).
func F16ToF32(h uint16) float32 { return f16Table[h] }

// F32ToF16 rounds f to the nearest float16, ties to even, keeping −0, ±Inf
// and NaN (a NaN stays a quiet NaN with its sign), as torch's .half() does.
func F32ToF16(f float32) uint16 { return uint16(float16.Fromfloat32(f)) }

// BF16ToF16 converts bfloat16 bits to float16 bits through float32, which is
// exact, so the single rounding is the float32→float16 one (as torch does).
func BF16ToF16(b uint16) uint16 {
	return F32ToF16(math.Float32frombits(uint32(b) << 16))
}

var f16Table = func() *[65536]float32 {
	var t [65536]float32
	for i := range t {
		t[i] = float16.Frombits(uint16(i)).Float32()
	}
	return &t
}()

// ToF16 rounds len(dst) little-endian elements of src, of type d, to
// float16 bits: F16 is copied; F32 and BF16 are rounded once to nearest
// even; F64 goes through float32 (see below). This is rwkvkit's one
// float→float16 rule, torch's .half(): ±Inf and NaN are kept (a NaN stays
// a quiet NaN with its sign) and finite values beyond float16's range
// become ±Inf. What cannot take such values (the quantizer) checks the
// result, rather than converting by another rule. On x86-64 CPUs with
// AVX-512 or AVX2 and F16C, F32 and BF16 are converted by vector code that
// gives the same bits.
func ToF16(dst []uint16, src []byte, d DType) error {
	if err := checkToF16(len(dst), src, d); err != nil {
		return err
	}
	i := 0
	if castWhole != nil && (d == BF16 || d == F32) {
		i = castWhole(dst, src, d)
	}
	toF16(dst[i:], src[i*d.Size():], d)
	return nil
}

// castWhole, set where this CPU has vector kernels (cast_amd64.go),
// converts the longest prefix of dst's elements that the kernels take
// whole (F32 and BF16 only) and returns its length; castWholeBytes does the
// same into little-endian float16 bytes. The portable code does the rest.
var (
	castWhole      func(dst []uint16, src []byte, d DType) int
	castWholeBytes func(dst, src []byte, d DType) int
)

// toF16 is ToF16's portable code, its arguments checked.
func toF16(dst []uint16, src []byte, d DType) {
	switch d {
	case F16:
		for i := range dst {
			dst[i] = binary.LittleEndian.Uint16(src[2*i:])
		}
	case F32:
		for i := range dst {
			dst[i] = F32ToF16(math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:])))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF16(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case F64:
		// Go's float32(x) rounds to nearest even; rounding twice (f64→f32→f16) can
		// differ from torch's single rounding only in double-rounding ties, which
		// float16 of a float64 checkpoint does not meet in practice.
		for i := range dst {
			dst[i] = F32ToF16(float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:]))))
		}
	}
}

// ConvertToF16 is ToF16 writing little-endian float16 bytes: it converts
// len(dst)/2 elements of src (type d) into dst.
func ConvertToF16(dst, src []byte, d DType) error {
	n := len(dst) / 2
	if err := checkToF16(n, src, d); err != nil {
		return err
	}
	if d == F16 {
		copy(dst, src[:2*n])
		return nil
	}
	i := 0
	if castWholeBytes != nil && (d == BF16 || d == F32) {
		i = castWholeBytes(dst[:2*n], src, d)
	}
	var buf [1024]uint16
	for ; i < n; i += len(buf) {
		h := buf[:min(len(buf), n-i)]
		toF16(h, src[i*d.Size():], d)
		for j, v := range h {
			binary.LittleEndian.PutUint16(dst[2*(i+j):], v)
		}
	}
	return nil
}

func checkToF16(n int, src []byte, d DType) error {
	if !d.Float() {
		return fmt.Errorf("convert %v to F16: not a floating-point type", d)
	}
	if len(src) < n*d.Size() {
		return fmt.Errorf("convert %v to F16: %d bytes for %d elements", d, len(src), n)
	}
	return nil
}
