// Package x86 reports the x86-64 vector features that the assembly kernels
// of rwkvkit use, as both the CPU and the operating system enable them. On
// other architectures every feature is false.
package x86

var (
	// AVX2 is AVX2 and F16C, with the YMM state saved by the OS.
	AVX2 bool
	// FMA is FMA3, on a CPU with AVX2.
	FMA bool
	// AVX512F and AVX512BW are those extensions, with the ZMM and mask
	// state saved by the OS, on a CPU with AVX and F16C.
	AVX512F, AVX512BW bool
)
