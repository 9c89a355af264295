package format

import (
	"unsafe"

	"github.com/rwkvkit/rwkvkit/internal/x86"
)

// Float16 casts for x86-64 CPUs with AVX-512F (Intel Skylake-SP, AMD Zen 4
// and later), sixteen elements at a time, and for those with AVX2 and F16C
// (Intel Haswell, AMD Zen 1 to 3), eight at a time, in cast_amd64.s. They
// give the bits the portable code gives (cast_amd64_test.go checks every
// bfloat16 and the float32 edge cases).

//go:noescape
func bf16ToF16AVX512(dst, src *byte, n int)

//go:noescape
func f32ToF16AVX512(dst, src *byte, n int)

//go:noescape
func bf16ToF16AVX2(dst, src *byte, n int)

//go:noescape
func f32ToF16AVX2(dst, src *byte, n int)

// castKernels is one pair of kernels and the multiple of elements they take.
type castKernels struct {
	name      string
	width     int
	bf16, f32 func(dst, src *byte, n int)
}

// castKernelSets lists the kernels this CPU runs, the preferred first.
var castKernelSets = func() []castKernels {
	var ks []castKernels
	if x86.AVX512F {
		ks = append(ks, castKernels{"AVX-512", 64, bf16ToF16AVX512, f32ToF16AVX512})
	}
	if x86.AVX2 {
		ks = append(ks, castKernels{"AVX2", 32, bf16ToF16AVX2, f32ToF16AVX2})
	}
	return ks
}()

func init() {
	if len(castKernelSets) > 0 {
		useCastKernels(&castKernelSets[0])
	}
}

// useCastKernels makes ToF16 and ConvertToF16 use k; nil means the
// portable code alone.
func useCastKernels(k *castKernels) {
	if k == nil {
		castWhole, castWholeBytes = nil, nil
		return
	}
	castWholeBytes = func(dst, src []byte, d DType) int {
		n := len(dst) / 2
		n -= n % k.width
		if n == 0 {
			return 0
		}
		// The bounds the kernel relies on (the caller checked src's length).
		_, _ = dst[2*n-1], src[n*d.Size()-1]
		kernel := k.bf16
		if d == F32 {
			kernel = k.f32
		}
		kernel(&dst[0], &src[0], n)
		return n
	}
	castWhole = func(dst []uint16, src []byte, d DType) int {
		if len(dst) == 0 {
			return 0
		}
		// x86-64 is little-endian: dst's bytes are the float16 bytes.
		return castWholeBytes(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 2*len(dst)), src, d)
	}
}
