package x86

//go:noescape
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

//go:noescape
func xgetbv0() (eax uint32)

func init() {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx, f16c = 1 << 12, 1 << 27, 1 << 28, 1 << 29
	if ecx1&(osxsave|avx|f16c) != osxsave|avx|f16c {
		return
	}
	xcr0 := xgetbv0()
	if xcr0&0x6 != 0x6 { // the OS saves the SSE and AVX state
		return
	}
	_, ebx7, _, _ := cpuid(7, 0)
	AVX2 = ebx7&(1<<5) != 0
	FMA = AVX2 && ecx1&fma != 0
	if xcr0&0xe0 == 0xe0 { // and the AVX-512 state
		AVX512F = ebx7&(1<<16) != 0
		AVX512BW = AVX512F && ebx7&(1<<30) != 0
	}
}
