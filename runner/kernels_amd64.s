#include "textflag.h"

// func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	RET

// HSUM4 reduces four accumulators a, b, c, d (YMM) to [Σa Σb Σc Σd] in the
// low lane of a. It clobbers b and c.
#define HSUM4(a, b, c, d, xa, xb) \
	VHADDPS b, a, a \
	VHADDPS d, c, c \
	VHADDPS c, a, a \
	VEXTRACTF128 $1, a, xb \
	VADDPS xb, xa, xa

// HSUM1 reduces the accumulators a, b, c, d (YMM) to Σ in the low element of
// a (X register xa), using xb (b's X register) as a temporary.
#define HSUM1(a, b, c, d, xa, xb) \
	VADDPS b, a, a \
	VADDPS d, c, c \
	VADDPS c, a, a \
	VEXTRACTF128 $1, a, xb \
	VADDPS xb, xa, xa \
	VHADDPS xa, xa, xa \
	VHADDPS xa, xa, xa

// The rows kernels compute out[i] = Σ_{c<k} w[i·ldw+c]·x[c] for i < n, one
// row after the other, so that the weights stream through memory in order
// (interleaving rows defeats the hardware prefetcher on short rows and
// costs about half the bandwidth). k is a positive multiple of 8.

// func rowsF32AVX2(w *float32, ldw int, x *float32, k int, out *float32, n int)
TEXT ·rowsF32AVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), BX
	SHLQ $2, BX
	MOVQ x+16(FP), DI
	MOVQ k+24(FP), CX
	MOVQ out+32(FP), DX
	MOVQ n+40(FP), R8
	SHLQ $2, CX                  // bytes per row used

r32row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ AX, AX
	CMPQ CX, $128
	JLT  r32tail

r32loop:
	VMOVUPS (SI)(AX*1), Y4
	VMOVUPS 32(SI)(AX*1), Y5
	VMOVUPS 64(SI)(AX*1), Y6
	VMOVUPS 96(SI)(AX*1), Y7
	VFMADD231PS (DI)(AX*1), Y4, Y0
	VFMADD231PS 32(DI)(AX*1), Y5, Y1
	VFMADD231PS 64(DI)(AX*1), Y6, Y2
	VFMADD231PS 96(DI)(AX*1), Y7, Y3
	ADDQ $128, AX
	LEAQ 128(AX), R9
	CMPQ R9, CX
	JLE  r32loop

r32tail:
	CMPQ AX, CX
	JGE  r32done
	VMOVUPS (SI)(AX*1), Y4
	VFMADD231PS (DI)(AX*1), Y4, Y0
	ADDQ $32, AX
	JMP  r32tail

r32done:
	HSUM1(Y0, Y1, Y2, Y3, X0, X1)
	VMOVSS X0, (DX)
	ADDQ BX, SI
	ADDQ $4, DX
	DECQ R8
	JNZ  r32row
	VZEROUPPER
	RET

// HSUM8 adds accumulators Y8–Y11 into Y0–Y3 and reduces those with HSUM1.
#define HSUM8 \
	VADDPS Y8, Y0, Y0 \
	VADDPS Y9, Y1, Y1 \
	VADDPS Y10, Y2, Y2 \
	VADDPS Y11, Y3, Y3 \
	HSUM1(Y0, Y1, Y2, Y3, X0, X1)

// ZERO8 clears the accumulators Y0–Y3 and Y8–Y11.
#define ZERO8 \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y8, Y8, Y8 \
	VXORPS Y9, Y9, Y9 \
	VXORPS Y10, Y10, Y10 \
	VXORPS Y11, Y11, Y11

// The 16-bit kernels take 64 weights (128 bytes) per step into eight
// accumulators and prefetch 1 KiB ahead: a float16 row is read at twice the
// element rate of a float32 one, and needs the extra loads in flight.

// func rowsF16AVX2(w *uint16, ldw int, x *float32, k int, out *float32, n int)
TEXT ·rowsF16AVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), BX
	SHLQ $1, BX
	MOVQ x+16(FP), DI
	MOVQ k+24(FP), CX
	MOVQ out+32(FP), DX
	MOVQ n+40(FP), R8
	SHLQ $1, CX                  // weight bytes per row used

r16row:
	ZERO8
	XORQ AX, AX
	CMPQ CX, $128
	JLT  r16tail

r16loop:
	PREFETCHT0 1024(SI)(AX*1)
	VCVTPH2PS (SI)(AX*1), Y4
	VCVTPH2PS 16(SI)(AX*1), Y5
	VCVTPH2PS 32(SI)(AX*1), Y6
	VCVTPH2PS 48(SI)(AX*1), Y7
	VCVTPH2PS 64(SI)(AX*1), Y12
	VCVTPH2PS 80(SI)(AX*1), Y13
	VCVTPH2PS 96(SI)(AX*1), Y14
	VCVTPH2PS 112(SI)(AX*1), Y15
	VFMADD231PS (DI)(AX*2), Y4, Y0
	VFMADD231PS 32(DI)(AX*2), Y5, Y1
	VFMADD231PS 64(DI)(AX*2), Y6, Y2
	VFMADD231PS 96(DI)(AX*2), Y7, Y3
	VFMADD231PS 128(DI)(AX*2), Y12, Y8
	VFMADD231PS 160(DI)(AX*2), Y13, Y9
	VFMADD231PS 192(DI)(AX*2), Y14, Y10
	VFMADD231PS 224(DI)(AX*2), Y15, Y11
	ADDQ $128, AX
	LEAQ 128(AX), R9
	CMPQ R9, CX
	JLE  r16loop

r16tail:
	CMPQ AX, CX
	JGE  r16done
	VCVTPH2PS (SI)(AX*1), Y4
	VFMADD231PS (DI)(AX*2), Y4, Y0
	ADDQ $16, AX
	JMP  r16tail

r16done:
	HSUM8
	VMOVSS X0, (DX)
	ADDQ BX, SI
	ADDQ $4, DX
	DECQ R8
	JNZ  r16row
	VZEROUPPER
	RET

// BF16 widens 8 bfloat16 values at m into the YMM register y.
#define BF16(m, y) \
	VPMOVZXWD m, y \
	VPSLLD $16, y, y

// func rowsBF16AVX2(w *uint16, ldw int, x *float32, k int, out *float32, n int)
TEXT ·rowsBF16AVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), BX
	SHLQ $1, BX
	MOVQ x+16(FP), DI
	MOVQ k+24(FP), CX
	MOVQ out+32(FP), DX
	MOVQ n+40(FP), R8
	SHLQ $1, CX

rbrow:
	ZERO8
	XORQ AX, AX
	CMPQ CX, $128
	JLT  rbtail

rbloop:
	PREFETCHT0 1024(SI)(AX*1)
	BF16((SI)(AX*1), Y4)
	BF16(16(SI)(AX*1), Y5)
	BF16(32(SI)(AX*1), Y6)
	BF16(48(SI)(AX*1), Y7)
	BF16(64(SI)(AX*1), Y12)
	BF16(80(SI)(AX*1), Y13)
	BF16(96(SI)(AX*1), Y14)
	BF16(112(SI)(AX*1), Y15)
	VFMADD231PS (DI)(AX*2), Y4, Y0
	VFMADD231PS 32(DI)(AX*2), Y5, Y1
	VFMADD231PS 64(DI)(AX*2), Y6, Y2
	VFMADD231PS 96(DI)(AX*2), Y7, Y3
	VFMADD231PS 128(DI)(AX*2), Y12, Y8
	VFMADD231PS 160(DI)(AX*2), Y13, Y9
	VFMADD231PS 192(DI)(AX*2), Y14, Y10
	VFMADD231PS 224(DI)(AX*2), Y15, Y11
	ADDQ $128, AX
	LEAQ 128(AX), R9
	CMPQ R9, CX
	JLE  rbloop

rbtail:
	CMPQ AX, CX
	JGE  rbdone
	BF16((SI)(AX*1), Y4)
	VFMADD231PS (DI)(AX*2), Y4, Y0
	ADDQ $16, AX
	JMP  rbtail

rbdone:
	HSUM8
	VMOVSS X0, (DX)
	ADDQ BX, SI
	ADDQ $4, DX
	DECQ R8
	JNZ  rbrow
	VZEROUPPER
	RET

// STORE writes the four sums in x to m, adding what m holds when R12 ≠ 0
// (a later block of a product split along k).
#define STORE(x, m) \
	TESTQ R12, R12 \
	JEQ 2(PC) \
	VADDPS m, x, x \
	VMOVUPS x, m

// func dot4F32AVX2(w *float32, ldw int, x *float32, k int, out *float32)
// out[i] = Σ_{c<k} w[i·ldw+c]·x[c] for i < 4; k is a positive multiple of 8.
TEXT ·dot4F32AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), BX
	SHLQ $2, BX
	MOVQ x+16(FP), DI
	MOVQ k+24(FP), CX
	LEAQ (SI)(BX*2), R8          // row 2
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	CMPQ CX, $16
	JLT  f32tail

f32loop:
	VMOVUPS (DI), Y8
	VMOVUPS 32(DI), Y9
	VFMADD231PS (SI), Y8, Y0
	VFMADD231PS 32(SI), Y9, Y4
	VFMADD231PS (SI)(BX*1), Y8, Y1
	VFMADD231PS 32(SI)(BX*1), Y9, Y5
	VFMADD231PS (R8), Y8, Y2
	VFMADD231PS 32(R8), Y9, Y6
	VFMADD231PS (R8)(BX*1), Y8, Y3
	VFMADD231PS 32(R8)(BX*1), Y9, Y7
	ADDQ $64, SI
	ADDQ $64, R8
	ADDQ $64, DI
	SUBQ $16, CX
	CMPQ CX, $16
	JGE  f32loop

f32tail:
	CMPQ CX, $0
	JEQ  f32done
	VMOVUPS (DI), Y8
	VFMADD231PS (SI), Y8, Y0
	VFMADD231PS (SI)(BX*1), Y8, Y1
	VFMADD231PS (R8), Y8, Y2
	VFMADD231PS (R8)(BX*1), Y8, Y3

f32done:
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	HSUM4(Y0, Y1, Y2, Y3, X0, X1)
	MOVQ out+32(FP), DX
	VMOVUPS X0, (DX)
	VZEROUPPER
	RET

// func gemm4x3F32AVX2(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int, acc int)
// out[t·ldo+r] = Σ_{c<k} w[r·ldw+c]·x[t·ldx+c] for r < 4, t < 3; k is a
// positive multiple of 8; acc ≠ 0 adds to out instead. Twelve accumulators, each 8-element step loads
// three inputs and four weight rows for twelve FMAs.
TEXT ·gemm4x3F32AVX2(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), BX
	SHLQ $2, BX
	MOVQ x+16(FP), DI
	MOVQ ldx+24(FP), DX
	SHLQ $2, DX
	MOVQ k+32(FP), CX
	LEAQ (SI)(BX*2), R8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

g3loop:
	VMOVUPS (DI), Y12
	VMOVUPS (DI)(DX*1), Y13
	VMOVUPS (DI)(DX*2), Y14
	VMOVUPS (SI), Y15
	VFMADD231PS Y12, Y15, Y0
	VFMADD231PS Y13, Y15, Y1
	VFMADD231PS Y14, Y15, Y2
	VMOVUPS (SI)(BX*1), Y15
	VFMADD231PS Y12, Y15, Y3
	VFMADD231PS Y13, Y15, Y4
	VFMADD231PS Y14, Y15, Y5
	VMOVUPS (R8), Y15
	VFMADD231PS Y12, Y15, Y6
	VFMADD231PS Y13, Y15, Y7
	VFMADD231PS Y14, Y15, Y8
	VMOVUPS (R8)(BX*1), Y15
	VFMADD231PS Y12, Y15, Y9
	VFMADD231PS Y13, Y15, Y10
	VFMADD231PS Y14, Y15, Y11
	ADDQ $32, SI
	ADDQ $32, R8
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  g3loop

	// Accumulator of row r, token t is Y(3r+t).
	MOVQ out+40(FP), SI
	MOVQ ldo+48(FP), BX
	SHLQ $2, BX
	MOVQ acc+56(FP), R12
	HSUM4(Y0, Y3, Y6, Y9, X0, X3)
	STORE(X0, (SI))
	HSUM4(Y1, Y4, Y7, Y10, X1, X4)
	STORE(X1, (SI)(BX*1))
	HSUM4(Y2, Y5, Y8, Y11, X2, X5)
	STORE(X2, (SI)(BX*2))
	VZEROUPPER
	RET

// FOLD adds the high 256 bits of z into its low 256 bits (y of the same
// register), through the temporary t/yt. The add is 512 bits wide (AVX512F
// alone has no 256-bit EVEX add); only the low half is used afterwards.
#define FOLD(z, t, yt) \
	VEXTRACTF64X4 $1, z, yt \
	VADDPS t, z, z

// func gemm4x6F32AVX512(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int, acc int)
// gemm4x3F32AVX2 for 4 rows and 6 tokens with 16-wide vectors; k is a
// positive multiple of 16. The accumulator of row r, token t is Z(4t+r), so
// that each token's four sums reduce in registers VEX instructions reach.
TEXT ·gemm4x6F32AVX512(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), BX
	SHLQ $2, BX
	MOVQ x+16(FP), DI
	MOVQ ldx+24(FP), DX
	SHLQ $2, DX
	MOVQ k+32(FP), CX
	LEAQ (SI)(BX*2), R8          // row 2
	LEAQ (DX)(DX*2), AX
	LEAQ (DI)(AX*1), R9          // token 3
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23

g6loop:
	VMOVUPS (DI), Z24
	VMOVUPS (DI)(DX*1), Z25
	VMOVUPS (DI)(DX*2), Z26
	VMOVUPS (R9), Z27
	VMOVUPS (R9)(DX*1), Z28
	VMOVUPS (R9)(DX*2), Z29
	VMOVUPS (SI), Z30
	VMOVUPS (SI)(BX*1), Z31
	VFMADD231PS Z24, Z30, Z0
	VFMADD231PS Z25, Z30, Z4
	VFMADD231PS Z26, Z30, Z8
	VFMADD231PS Z27, Z30, Z12
	VFMADD231PS Z28, Z30, Z16
	VFMADD231PS Z29, Z30, Z20
	VMOVUPS (R8), Z30
	VFMADD231PS Z24, Z31, Z1
	VFMADD231PS Z25, Z31, Z5
	VFMADD231PS Z26, Z31, Z9
	VFMADD231PS Z27, Z31, Z13
	VFMADD231PS Z28, Z31, Z17
	VFMADD231PS Z29, Z31, Z21
	VMOVUPS (R8)(BX*1), Z31
	VFMADD231PS Z24, Z30, Z2
	VFMADD231PS Z25, Z30, Z6
	VFMADD231PS Z26, Z30, Z10
	VFMADD231PS Z27, Z30, Z14
	VFMADD231PS Z28, Z30, Z18
	VFMADD231PS Z29, Z30, Z22
	VFMADD231PS Z24, Z31, Z3
	VFMADD231PS Z25, Z31, Z7
	VFMADD231PS Z26, Z31, Z11
	VFMADD231PS Z27, Z31, Z15
	VFMADD231PS Z28, Z31, Z19
	VFMADD231PS Z29, Z31, Z23
	ADDQ $64, SI
	ADDQ $64, R8
	ADDQ $64, DI
	ADDQ $64, R9
	SUBQ $16, CX
	JNZ  g6loop

	MOVQ out+40(FP), SI
	MOVQ ldo+48(FP), BX
	SHLQ $2, BX
	MOVQ acc+56(FP), R12
	LEAQ (BX)(BX*2), AX
	LEAQ (SI)(AX*1), R9          // token 3's outputs
	FOLD(Z0, Z24, Y24)
	FOLD(Z1, Z24, Y24)
	FOLD(Z2, Z24, Y24)
	FOLD(Z3, Z24, Y24)
	HSUM4(Y0, Y1, Y2, Y3, X0, X1)
	STORE(X0, (SI))
	FOLD(Z4, Z24, Y24)
	FOLD(Z5, Z24, Y24)
	FOLD(Z6, Z24, Y24)
	FOLD(Z7, Z24, Y24)
	HSUM4(Y4, Y5, Y6, Y7, X4, X5)
	STORE(X4, (SI)(BX*1))
	FOLD(Z8, Z24, Y24)
	FOLD(Z9, Z24, Y24)
	FOLD(Z10, Z24, Y24)
	FOLD(Z11, Z24, Y24)
	HSUM4(Y8, Y9, Y10, Y11, X8, X9)
	STORE(X8, (SI)(BX*2))
	FOLD(Z12, Z24, Y24)
	FOLD(Z13, Z24, Y24)
	FOLD(Z14, Z24, Y24)
	FOLD(Z15, Z24, Y24)
	HSUM4(Y12, Y13, Y14, Y15, X12, X13)
	STORE(X12, (R9))
	VMOVAPS Z16, Z0
	VMOVAPS Z17, Z1
	VMOVAPS Z18, Z2
	VMOVAPS Z19, Z3
	VMOVAPS Z20, Z4
	VMOVAPS Z21, Z5
	VMOVAPS Z22, Z6
	VMOVAPS Z23, Z7
	FOLD(Z0, Z24, Y24)
	FOLD(Z1, Z24, Y24)
	FOLD(Z2, Z24, Y24)
	FOLD(Z3, Z24, Y24)
	HSUM4(Y0, Y1, Y2, Y3, X0, X1)
	STORE(X0, (R9)(BX*1))
	FOLD(Z4, Z24, Y24)
	FOLD(Z5, Z24, Y24)
	FOLD(Z6, Z24, Y24)
	FOLD(Z7, Z24, Y24)
	HSUM4(Y4, Y5, Y6, Y7, X4, X5)
	STORE(X4, (R9)(BX*2))
	VZEROUPPER
	RET

// func widenF16AVX2(dst *float32, src *uint16, n int)
// n is a positive multiple of 8.
TEXT ·widenF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

w16loop:
	VCVTPH2PS (SI), Y0
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  w16loop
	VZEROUPPER
	RET

// func widenBF16AVX2(dst *float32, src *uint16, n int)
// n is a positive multiple of 8.
TEXT ·widenBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

wbloop:
	VPMOVZXWD (SI), Y0
	VPSLLD $16, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  wbloop
	VZEROUPPER
	RET

// func sumF32AVX2(x *float32, n int) float32
// n is a positive multiple of 32.
TEXT ·sumF32AVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

sumloop:
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	VADDPS 64(SI), Y2, Y2
	VADDPS 96(SI), Y3, Y3
	ADDQ $128, SI
	SUBQ $32, CX
	JNZ  sumloop

	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	MOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func wkv7HeadAVX2(S *float32, n int, r, w, k, v, nkk, kka, y *float32)
// One token of one RWKV-7 head (wkv7HeadGo); n is a positive multiple of 8.
// Per row i of S: sa = Σ_j S[i][j]·nkk[j]; S[i][j] = S[i][j]·w[j] +
// sa·kka[j] + v[i]·k[j]; y[i] = Σ_j S[i][j]·r[j]. Rows go four at a time,
// so that the loads of the shared vectors and the horizontal sums serve four.
TEXT ·wkv7HeadAVX2(SB), NOSPLIT, $0-72
	MOVQ S+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ r+16(FP), R12
	MOVQ w+24(FP), R8
	MOVQ k+32(FP), R9
	MOVQ v+40(FP), R13
	MOVQ nkk+48(FP), R10
	MOVQ kka+56(FP), R11
	MOVQ y+64(FP), DI
	MOVQ CX, BX
	SHLQ $2, BX                  // bytes per row
	LEAQ (SI)(BX*2), R14         // row i+2
	XORQ DX, DX                  // row i

w4rows:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ AX, AX

w4pass1:
	VMOVUPS (R10)(AX*1), Y4
	VFMADD231PS (SI), Y4, Y0
	VFMADD231PS (SI)(BX*1), Y4, Y1
	VFMADD231PS (R14), Y4, Y2
	VFMADD231PS (R14)(BX*1), Y4, Y3
	ADDQ $32, AX
	ADDQ $32, SI
	ADDQ $32, R14
	CMPQ AX, BX
	JLT  w4pass1
	SUBQ BX, SI
	SUBQ BX, R14

	HSUM4(Y0, Y1, Y2, Y3, X0, X1)  // X0 = sa of the four rows
	VBROADCASTSS X0, Y4
	VPERMILPS $0x55, X0, X5
	VBROADCASTSS X5, Y5
	VPERMILPS $0xaa, X0, X6
	VBROADCASTSS X6, Y6
	VPERMILPS $0xff, X0, X7
	VBROADCASTSS X7, Y7
	VBROADCASTSS (R13)(DX*4), Y8
	VBROADCASTSS 4(R13)(DX*4), Y9
	VBROADCASTSS 8(R13)(DX*4), Y10
	VBROADCASTSS 12(R13)(DX*4), Y11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ AX, AX

w4pass2:
	VMOVUPS (R8)(AX*1), Y12      // w
	VMOVUPS (R11)(AX*1), Y13     // kka
	VMULPS (SI), Y12, Y14
	VFMADD231PS Y13, Y4, Y14
	VFMADD231PS (R9)(AX*1), Y8, Y14
	VMOVUPS Y14, (SI)
	VFMADD231PS (R12)(AX*1), Y14, Y0
	VMULPS (SI)(BX*1), Y12, Y14
	VFMADD231PS Y13, Y5, Y14
	VFMADD231PS (R9)(AX*1), Y9, Y14
	VMOVUPS Y14, (SI)(BX*1)
	VFMADD231PS (R12)(AX*1), Y14, Y1
	VMULPS (R14), Y12, Y14
	VFMADD231PS Y13, Y6, Y14
	VFMADD231PS (R9)(AX*1), Y10, Y14
	VMOVUPS Y14, (R14)
	VFMADD231PS (R12)(AX*1), Y14, Y2
	VMULPS (R14)(BX*1), Y12, Y14
	VFMADD231PS Y13, Y7, Y14
	VFMADD231PS (R9)(AX*1), Y11, Y14
	VMOVUPS Y14, (R14)(BX*1)
	VFMADD231PS (R12)(AX*1), Y14, Y3
	ADDQ $32, AX
	ADDQ $32, SI
	ADDQ $32, R14
	CMPQ AX, BX
	JLT  w4pass2

	HSUM4(Y0, Y1, Y2, Y3, X0, X1)
	VMOVUPS X0, (DI)(DX*4)
	// SI and R14 stand at the end of rows i and i+2: move to rows i+4, i+6.
	LEAQ (SI)(BX*2), SI
	ADDQ BX, SI
	LEAQ (R14)(BX*2), R14
	ADDQ BX, R14
	ADDQ $4, DX
	CMPQ DX, CX
	JLT  w4rows
	VZEROUPPER
	RET

// Constants of the float32 exponential (Cephes expf: the argument is clamped
// to [−87, 88.376] so that every result is a normal float, split as
// n·ln2 + r with ln2 in two parts, and e^r is a degree-7 polynomial), each
// repeated over eight lanes.
#define EXPC(off, v) \
	DATA expc<>+(off+0)(SB)/4, v \
	DATA expc<>+(off+4)(SB)/4, v \
	DATA expc<>+(off+8)(SB)/4, v \
	DATA expc<>+(off+12)(SB)/4, v \
	DATA expc<>+(off+16)(SB)/4, v \
	DATA expc<>+(off+20)(SB)/4, v \
	DATA expc<>+(off+24)(SB)/4, v \
	DATA expc<>+(off+28)(SB)/4, v

EXPC(0, $88.37626)               // largest argument
EXPC(32, $-87.0)                 // smallest argument
EXPC(64, $1.44269504088896341)   // log2(e)
EXPC(96, $0.693359375)           // ln2, high part
EXPC(128, $-2.12194440e-4)       // ln2, low part (negated remainder)
EXPC(160, $1.9875691500e-4)
EXPC(192, $1.3981999507e-3)
EXPC(224, $8.3334519073e-3)
EXPC(256, $4.1665795894e-2)
EXPC(288, $1.6666665459e-1)
EXPC(320, $5.0000001201e-1)
EXPC(352, $1.0)
GLOBL expc<>(SB), RODATA|NOPTR, $384

// EXP sets Y0 = e^Y0, using Y1–Y3.
#define EXP \
	VMINPS expc<>+0(SB), Y0, Y0 \
	VMAXPS expc<>+32(SB), Y0, Y0 \
	VMULPS expc<>+64(SB), Y0, Y1 \
	VROUNDPS $0, Y1, Y1 \
	VFNMADD231PS expc<>+96(SB), Y1, Y0 \
	VFNMADD231PS expc<>+128(SB), Y1, Y0 \
	VMOVUPS expc<>+160(SB), Y2 \
	VFMADD213PS expc<>+192(SB), Y0, Y2 \
	VFMADD213PS expc<>+224(SB), Y0, Y2 \
	VFMADD213PS expc<>+256(SB), Y0, Y2 \
	VFMADD213PS expc<>+288(SB), Y0, Y2 \
	VFMADD213PS expc<>+320(SB), Y0, Y2 \
	VMULPS Y0, Y0, Y3 \
	VFMADD213PS Y0, Y3, Y2 \
	VADDPS expc<>+352(SB), Y2, Y2 \
	VCVTPS2DQ Y1, Y1 \
	VPSLLD $23, Y1, Y1 \
	VPADDD Y1, Y2, Y0

// func expAVX2(dst, src *float32, n int)
// dst[i] = e^src[i]; n is a positive multiple of 8.
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

exploop:
	VMOVUPS (SI), Y0
	EXP
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  exploop
	VZEROUPPER
	RET

// func sigmoidAVX2(dst, src *float32, n int)
// dst[i] = 1/(1 + e^−src[i]); n is a positive multiple of 8.
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VMOVUPS expc<>+352(SB), Y5   // 1
	VXORPS Y4, Y4, Y4

sigloop:
	VSUBPS (SI), Y4, Y0
	EXP
	VADDPS Y5, Y0, Y0
	VDIVPS Y0, Y5, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  sigloop
	VZEROUPPER
	RET

// func reluSquareAVX2(x *float32, n int)
// x[i] = max(x[i], 0)²; n is a positive multiple of 8.
TEXT ·reluSquareAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VXORPS Y1, Y1, Y1

reluloop:
	VMAXPS (DI), Y1, Y0
	VMULPS Y0, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  reluloop
	VZEROUPPER
	RET

// func int8RowsAVX2(q *uint8, ldq int, x *float32, k int, scale *float32, out *float32, n int)
// out[i] = Σ_b scale[i·k/128+b]·Σ_{j<128} q[i·ldq+128b+j]·x[128b+j] for i < n:
// the code part of web-rwkv Int8 rows whose blocks start at the row start
// (the caller adds Σ_b min_b·Σx over the block). k is a positive multiple
// of 128.
TEXT ·int8RowsAVX2(SB), NOSPLIT, $0-56
	MOVQ q+0(FP), SI
	MOVQ ldq+8(FP), BX
	MOVQ x+16(FP), DI
	MOVQ k+24(FP), CX
	MOVQ scale+32(FP), R8
	MOVQ out+40(FP), DX
	MOVQ n+48(FP), R9

q8row:
	VXORPS Y8, Y8, Y8            // Σ over blocks
	XORQ AX, AX                  // element offset in the row

q8block:
	PREFETCHT0 4096(SI)(AX*1)     // a byte per weight streams slowly: fetch ahead
	PREFETCHT0 4160(SI)(AX*1)
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ $4, R10

q8step:
	VPMOVZXBD (SI)(AX*1), Y4
	VPMOVZXBD 8(SI)(AX*1), Y5
	VPMOVZXBD 16(SI)(AX*1), Y6
	VPMOVZXBD 24(SI)(AX*1), Y7
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VFMADD231PS (DI)(AX*4), Y4, Y0
	VFMADD231PS 32(DI)(AX*4), Y5, Y1
	VFMADD231PS 64(DI)(AX*4), Y6, Y2
	VFMADD231PS 96(DI)(AX*4), Y7, Y3
	ADDQ $32, AX
	DECQ R10
	JNZ  q8step

	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VBROADCASTSS (R8), Y9
	VFMADD231PS Y0, Y9, Y8
	ADDQ $4, R8
	CMPQ AX, CX
	JLT  q8block

	VEXTRACTF128 $1, Y8, X1
	VADDPS X1, X8, X8
	VHADDPS X8, X8, X8
	VHADDPS X8, X8, X8
	VMOVSS X8, (DX)
	ADDQ BX, SI
	ADDQ $4, DX
	DECQ R9
	JNZ  q8row
	VZEROUPPER
	RET

// The NF4 code book split for VPERMPS, which indexes eight entries: codes
// 0–7 and 8–15.
DATA nf4lo<>+0(SB)/4, $-1.0
DATA nf4lo<>+4(SB)/4, $-0.6961928009986877
DATA nf4lo<>+8(SB)/4, $-0.5250730514526367
DATA nf4lo<>+12(SB)/4, $-0.39491748809814453
DATA nf4lo<>+16(SB)/4, $-0.28444138169288635
DATA nf4lo<>+20(SB)/4, $-0.18477343022823334
DATA nf4lo<>+24(SB)/4, $-0.09105003625154495
DATA nf4lo<>+28(SB)/4, $0.0
GLOBL nf4lo<>(SB), RODATA|NOPTR, $32
DATA nf4hi<>+0(SB)/4, $0.07958029955625534
DATA nf4hi<>+4(SB)/4, $0.16093020141124725
DATA nf4hi<>+8(SB)/4, $0.24611230194568634
DATA nf4hi<>+12(SB)/4, $0.33791524171829224
DATA nf4hi<>+16(SB)/4, $0.44070982933044434
DATA nf4hi<>+20(SB)/4, $0.5626170039176941
DATA nf4hi<>+24(SB)/4, $0.7229568362236023
DATA nf4hi<>+28(SB)/4, $1.0
GLOBL nf4hi<>(SB), RODATA|NOPTR, $32
DATA nf4mask<>+0(SB)/4, $15
DATA nf4mask<>+4(SB)/4, $15
DATA nf4mask<>+8(SB)/4, $15
DATA nf4mask<>+12(SB)/4, $15
DATA nf4mask<>+16(SB)/4, $15
DATA nf4mask<>+20(SB)/4, $15
DATA nf4mask<>+24(SB)/4, $15
DATA nf4mask<>+28(SB)/4, $15
GLOBL nf4mask<>(SB), RODATA|NOPTR, $32

// NF4LOOK sets y to the code-book values of the codes in y (dwords 0–15),
// using t and u: both halves of the book are looked up by the low three
// bits, then bit 3, shifted to the sign, picks one.
#define NF4LOOK(y, t, u) \
	VPERMPS Y13, y, t \
	VPERMPS Y14, y, u \
	VPSLLD $28, y, y \
	VBLENDVPS y, u, t, y

// func nf4RowsAVX2(codes *uint8, ldc int, xp *float32, k int, absmax *float32, out *float32, n int)
// out[i] = Σ_b absmax[i·k/64+b]·Σ_{j<64} table[code(i, 64b+j)]·x[64b+j] for
// i < n, rows of ldc bytes whose blocks start at the row start. xp is x
// with each run of 16 reordered as its 8 even then its 8 odd elements, the
// order in which the low and high nibbles of 8 bytes come out. k is a
// positive multiple of 64.
TEXT ·nf4RowsAVX2(SB), NOSPLIT, $0-56
	MOVQ codes+0(FP), SI
	MOVQ ldc+8(FP), BX
	MOVQ xp+16(FP), DI
	MOVQ k+24(FP), CX
	MOVQ absmax+32(FP), R8
	MOVQ out+40(FP), DX
	MOVQ n+48(FP), R9
	VMOVUPS nf4lo<>(SB), Y13
	VMOVUPS nf4hi<>(SB), Y14
	VMOVUPS nf4mask<>(SB), Y15
	SHRQ $1, CX                  // bytes per row

n4row:
	VXORPS Y8, Y8, Y8
	XORQ AX, AX                  // byte offset in the row

n4block:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ $4, R10

n4step:
	VPMOVZXBD (SI)(AX*1), Y4     // 8 bytes: 16 codes
	VPAND Y15, Y4, Y5            // low nibbles: even elements
	VPSRLD $4, Y4, Y6            // high nibbles: odd elements
	NF4LOOK(Y5, Y7, Y11)
	NF4LOOK(Y6, Y9, Y12)
	VFMADD231PS (DI)(AX*8), Y5, Y0
	VFMADD231PS 32(DI)(AX*8), Y6, Y1
	ADDQ $8, AX
	DECQ R10
	JNZ  n4step

	VADDPS Y1, Y0, Y0
	VBROADCASTSS (R8), Y10
	VFMADD231PS Y0, Y10, Y8
	ADDQ $4, R8
	CMPQ AX, CX
	JLT  n4block

	VEXTRACTF128 $1, Y8, X1
	VADDPS X1, X8, X8
	VHADDPS X8, X8, X8
	VHADDPS X8, X8, X8
	VMOVSS X8, (DX)
	ADDQ BX, SI
	ADDQ $4, DX
	DECQ R9
	JNZ  n4row
	VZEROUPPER
	RET
