package quantize

import "rwkvkit/format"

// Whole-block kernels for x86-64 CPUs with AVX-512F and AVX-512BW (Intel
// Skylake-SP, AMD Zen 4 and later), in codec_amd64.s. They compute the same
// float32 steps as int8Block and nf4Block, sixteen elements at a time.

//go:noescape
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

//go:noescape
func xgetbv0() (eax uint32)

//go:noescape
func int8BlocksAVX512(codes, params *byte, src *uint16, n int) int

//go:noescape
func nf4BlocksAVX512(codes, params *byte, src *uint16, n int, mid *float32) int

func hasAVX512BW() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, avx, f16c = 1 << 27, 1 << 28, 1 << 29
	if ecx1&(osxsave|avx|f16c) != osxsave|avx|f16c {
		return false
	}
	// The OS saves the SSE, AVX and AVX-512 register state.
	if xgetbv0()&0xe6 != 0xe6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx512f, avx512bw = 1 << 16, 1 << 30
	return ebx7&(avx512f|avx512bw) == avx512f|avx512bw
}

func init() {
	if hasAVX512BW() {
		int8Whole, nf4Whole = int8WholeAVX512, nf4WholeAVX512
	}
}

// nf4Mid is NF4Midpoints padded to a vector of sixteen.
var nf4Mid = func() (m [16]float32) {
	copy(m[:], NF4Midpoints[:])
	return m
}()

func int8WholeAVX512(codes, params []byte, src []uint16) int {
	n := len(src) / format.Int8BlockSize
	if n == 0 {
		return 0
	}
	_, _ = codes[n*format.Int8BlockSize-1], params[4*n-1]
	return int8BlocksAVX512(&codes[0], &params[0], &src[0], n)
}

func nf4WholeAVX512(codes, params []byte, src []uint16) int {
	n := len(src) / format.NF4BlockSize
	if n == 0 {
		return 0
	}
	_, _ = codes[n*format.NF4BlockSize/2-1], params[2*n-1]
	return nf4BlocksAVX512(&codes[0], &params[0], &src[0], n, &nf4Mid[0])
}
