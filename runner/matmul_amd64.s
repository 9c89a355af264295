#include "textflag.h"
#include "kernels_amd64.h"

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

// func rowsF16AVX512(w *uint16, ldw int, x *float32, k int, out *float32, n int)
// rowsF16AVX2 with 16-wide conversions: fewer instructions per byte, which
// shows when the memory is fast (about 8% on AMD Zen 5). The main loop
// takes 64 weights per step, the tail 8, after the 512-bit sums are folded
// to 256 bits (a VEX instruction on Y0 would clear the upper half of Z0).
TEXT ·rowsF16AVX512(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), BX
	SHLQ $1, BX
	MOVQ x+16(FP), DI
	MOVQ k+24(FP), CX
	MOVQ out+32(FP), DX
	MOVQ n+40(FP), R8
	SHLQ $1, CX

z16row:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	XORQ AX, AX
	CMPQ CX, $128
	JLT  z16fold

z16loop:
	PREFETCHT0 1024(SI)(AX*1)
	VCVTPH2PS (SI)(AX*1), Z4
	VCVTPH2PS 32(SI)(AX*1), Z5
	VCVTPH2PS 64(SI)(AX*1), Z6
	VCVTPH2PS 96(SI)(AX*1), Z7
	VFMADD231PS (DI)(AX*2), Z4, Z0
	VFMADD231PS 64(DI)(AX*2), Z5, Z1
	VFMADD231PS 128(DI)(AX*2), Z6, Z2
	VFMADD231PS 192(DI)(AX*2), Z7, Z3
	ADDQ $128, AX
	LEAQ 128(AX), R9
	CMPQ R9, CX
	JLE  z16loop

z16fold:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS Y1, Y0, Y0

z16tail:
	CMPQ AX, CX
	JGE  z16done
	VCVTPH2PS (SI)(AX*1), Y4
	VFMADD231PS (DI)(AX*2), Y4, Y0
	ADDQ $16, AX
	JMP  z16tail

z16done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS X0, (DX)
	ADDQ BX, SI
	ADDQ $4, DX
	DECQ R8
	JNZ  z16row
	VZEROUPPER
	RET

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
