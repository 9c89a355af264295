#include "textflag.h"
#include "kernels_amd64.h"

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
