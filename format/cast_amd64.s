#include "textflag.h"

// Float16 casts with VCVTPS2PH, whose immediate 0 selects round to nearest
// even whatever MXCSR holds (FTZ does not apply to it either). Bfloat16 is
// the top half of a float32, so widening it is a zero-extension and a
// shift, exact; the one rounding is VCVTPS2PH's, as in the portable code.
// Each kernel converts n elements, n a multiple of four registers' worth
// (64 for AVX-512, 32 for AVX2).

// BF16 and F32 load the elements at off(SI) into float32 register r.
#define BF16(off, r) VPMOVZXWD off(SI), r; VPSLLD $16, r, r
#define F32(off, r) VMOVUPS off(SI), r

// CAST converts four registers r0…r3 of w elements per step, loaded by
// LOAD from in bytes each, stored as float16 (2w bytes each).
#define CAST(loop, done, LOAD, in, w, r0, r1, r2, r3) \
	MOVQ dst+0(FP), DI; \
	MOVQ src+8(FP), SI; \
	MOVQ n+16(FP), CX; \
loop: \
	CMPQ CX, $0; \
	JLE  done; \
	LOAD(0, r0); \
	LOAD(in, r1); \
	LOAD(2*in, r2); \
	LOAD(3*in, r3); \
	VCVTPS2PH $0, r0, (DI); \
	VCVTPS2PH $0, r1, 2*w(DI); \
	VCVTPS2PH $0, r2, 4*w(DI); \
	VCVTPS2PH $0, r3, 6*w(DI); \
	ADDQ $(4*in), SI; \
	ADDQ $(8*w), DI; \
	SUBQ $(4*w), CX; \
	JMP  loop; \
done: \
	VZEROUPPER; \
	RET

// func bf16ToF16AVX512(dst, src *byte, n int)
TEXT ·bf16ToF16AVX512(SB), NOSPLIT, $0-24
	CAST(bz, bzdone, BF16, 32, 16, Z0, Z1, Z2, Z3)

// func f32ToF16AVX512(dst, src *byte, n int)
TEXT ·f32ToF16AVX512(SB), NOSPLIT, $0-24
	CAST(fz, fzdone, F32, 64, 16, Z0, Z1, Z2, Z3)

// func bf16ToF16AVX2(dst, src *byte, n int)
TEXT ·bf16ToF16AVX2(SB), NOSPLIT, $0-24
	CAST(by, bydone, BF16, 16, 8, Y0, Y1, Y2, Y3)

// func f32ToF16AVX2(dst, src *byte, n int)
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-24
	CAST(fy, fydone, F32, 32, 8, Y0, Y1, Y2, Y3)
