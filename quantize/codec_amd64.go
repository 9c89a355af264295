package quantize

import (
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/x86"
)

// Whole-block kernels for x86-64 CPUs with AVX-512F and AVX-512BW (Intel
// Skylake-SP, AMD Zen 4 and later), in codec_amd64.s, and for those with
// AVX2 and F16C only (Intel Haswell, AMD Zen 1 to 3), in
// codec_avx2_amd64.s. They compute the same float32 steps as int8Block and
// nf4Block, sixteen or eight elements at a time.

//go:noescape
func int8BlocksAVX512(codes, params *byte, src *uint16, n int) int

//go:noescape
func nf4BlocksAVX512(codes, params *byte, src *uint16, n int, mid *float32) int

//go:noescape
func int8BlocksAVX2(codes, params *byte, src *uint16, n int) int

//go:noescape
func nf4BlocksAVX2(codes, params *byte, src *uint16, n int, mid *float32) int

// kernelSet is one pair of whole-block kernels.
type kernelSet struct {
	name string
	int8 func(codes, params []byte, src []uint16) int
	nf4  func(codes, params []byte, src []uint16, mids *[16]float32) int
}

// kernelSets lists the kernels this CPU runs, the preferred first.
var kernelSets = func() []kernelSet {
	var ks []kernelSet
	if x86.AVX512BW {
		ks = append(ks, kernelSet{"AVX-512", wholeInt8(int8BlocksAVX512), wholeNF4(nf4BlocksAVX512)})
	}
	if x86.AVX2 {
		ks = append(ks, kernelSet{"AVX2", wholeInt8(int8BlocksAVX2), wholeNF4(nf4BlocksAVX2)})
	}
	return ks
}()

func init() {
	if len(kernelSets) > 0 {
		int8Whole, nf4Whole = kernelSets[0].int8, kernelSets[0].nf4
	}
}

// wholeInt8 and wholeNF4 wrap a kernel for the whole blocks of src, checking
// the bounds it relies on before handing it pointers.
func wholeInt8(kernel func(codes, params *byte, src *uint16, n int) int) func(codes, params []byte, src []uint16) int {
	return func(codes, params []byte, src []uint16) int {
		n := len(src) / format.Int8BlockSize
		if n == 0 {
			return 0
		}
		_, _ = codes[n*format.Int8BlockSize-1], params[4*n-1]
		return kernel(&codes[0], &params[0], &src[0], n)
	}
}

func wholeNF4(kernel func(codes, params *byte, src *uint16, n int, mid *float32) int) func(codes, params []byte, src []uint16, mids *[16]float32) int {
	return func(codes, params []byte, src []uint16, mids *[16]float32) int {
		n := len(src) / format.NF4BlockSize
		if n == 0 {
			return 0
		}
		_, _ = codes[n*format.NF4BlockSize/2-1], params[2*n-1]
		return kernel(&codes[0], &params[0], &src[0], n, &mids[0])
	}
}
