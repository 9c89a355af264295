#include "textflag.h"

// The float16 inputs are widened with VCVTPH2PS, which is exact for every
// finite float16 (subnormals included) and ignores MXCSR.DAZ; the
// arithmetic after it sees only normal float32 values and zeros, and rounds
// to nearest even as Go leaves MXCSR. Subtraction and multiplication are
// separate instructions, as the package doc requires.
//
// Block minima and maxima are taken on order-preserving unsigned keys,
// u = h ^ 0x8000 for h ≥ 0 and u = h ^ 0xFFFF for h < 0: finite values have
// keys 0x0400…0xFBFF, −0 has 0x7FFF, +0 0x8000.

// func int8BlocksAVX512(codes, params *byte, src *uint16, n int) int
// Quantizes n whole Int8 blocks and returns how many it did: fewer than n
// when a block holds ±Inf or NaN (that block is left untouched).
TEXT ·int8BlocksAVX512(SB), NOSPLIT, $0-40
	MOVQ codes+0(FP), DI
	MOVQ params+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	XORQ R9, R9
	MOVL $0x80008000, AX
	VPBROADCASTD AX, Z15
	MOVL $0x437f0000, AX         // 255.0
	VMOVD AX, X11

q8loop:
	CMPQ R9, CX
	JGE  q8done
	VMOVDQU64 (SI), Z0
	VMOVDQU64 64(SI), Z1
	VMOVDQU64 128(SI), Z2
	VMOVDQU64 192(SI), Z3
	VPSRAW $15, Z0, Z4
	VPSRAW $15, Z1, Z5
	VPSRAW $15, Z2, Z6
	VPSRAW $15, Z3, Z7
	VPORQ  Z15, Z4, Z4
	VPORQ  Z15, Z5, Z5
	VPORQ  Z15, Z6, Z6
	VPORQ  Z15, Z7, Z7
	VPXORQ Z4, Z0, Z0
	VPXORQ Z5, Z1, Z1
	VPXORQ Z6, Z2, Z2
	VPXORQ Z7, Z3, Z3
	VPMINUW Z1, Z0, Z4
	VPMINUW Z3, Z2, Z5
	VPMAXUW Z1, Z0, Z6
	VPMAXUW Z3, Z2, Z7
	VPMINUW Z5, Z4, Z4
	VPMAXUW Z7, Z6, Z6
	VEXTRACTI64X4 $1, Z4, Y5
	VEXTRACTI64X4 $1, Z6, Y7
	VPMINUW Y5, Y4, Y4
	VPMAXUW Y7, Y6, Y6
	VEXTRACTI128 $1, Y4, X5
	VEXTRACTI128 $1, Y6, X7
	VPMINUW X5, X4, X4
	VPMAXUW X7, X6, X6
	VPCMPEQB X7, X7, X7
	VPXOR X7, X6, X6             // the largest key is the smallest complement
	VPHMINPOSUW X4, X4
	VPHMINPOSUW X6, X6
	VMOVD X4, AX
	VMOVD X6, BX
	ANDL $0xFFFF, AX
	NOTL BX
	ANDL $0xFFFF, BX
	CMPL AX, $0x0400
	JB   q8done
	CMPL BX, $0xFBFF
	JA   q8done

	// Keys back to float16 bits, −0 (key 0x7FFF) as +0.
	MOVL $0x8000, DX
	CMPL AX, $0x7FFF
	CMOVLEQ DX, AX
	CMPL BX, $0x7FFF
	CMOVLEQ DX, BX
	XORL $0x8000, AX
	MOVWLSX AX, AX
	MOVL AX, DX
	SARL $31, DX
	ANDL $0x7FFF, DX
	XORL DX, AX
	XORL $0x8000, BX
	MOVWLSX BX, BX
	MOVL BX, DX
	SARL $31, DX
	ANDL $0x7FFF, DX
	XORL DX, BX
	MOVW AX, (R8)
	MOVW BX, 2(R8)

	VMOVD AX, X8
	VMOVD BX, X9
	VCVTPH2PS X8, X8             // min
	VCVTPH2PS X9, X9
	VSUBSS X8, X9, X9            // R = max − min
	VXORPS X10, X10, X10
	VUCOMISS X10, X9
	JEQ  q8scale
	VDIVSS X9, X11, X10          // s = 255 / R

q8scale:
	VBROADCASTSS X8, Z8
	VBROADCASTSS X10, Z10

#define Q8(off, out) \
	VCVTPH2PS off(SI), Z0; \
	VSUBPS Z8, Z0, Z0; \
	VMULPS Z10, Z0, Z0; \
	VCVTPS2DQ Z0, Z0; \
	VPMOVDB Z0, out(DI)

	Q8(0, 0)
	Q8(32, 16)
	Q8(64, 32)
	Q8(96, 48)
	Q8(128, 64)
	Q8(160, 80)
	Q8(192, 96)
	Q8(224, 112)

	ADDQ $256, SI
	ADDQ $128, DI
	ADDQ $4, R8
	INCQ R9
	JMP  q8loop

q8done:
	MOVQ R9, ret+32(FP)
	VZEROUPPER
	RET

// func nf4BlocksAVX512(codes, params *byte, src *uint16, n int, mid *float32) int
// Quantizes n whole NF4 blocks and returns how many it did: fewer than n
// when a block holds ±Inf or NaN (that block is left untouched). mid points
// to the 15 NF4 midpoints and one more float32.
TEXT ·nf4BlocksAVX512(SB), NOSPLIT, $64-48
	MOVQ codes+0(FP), DI
	MOVQ params+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	MOVQ mid+32(FP), R10
	XORQ R9, R9
	MOVL $0x7FFF7FFF, AX
	VPBROADCASTD AX, Z15
	MOVL $1, AX
	VPBROADCASTD AX, Z31

nf4loop:
	CMPQ R9, CX
	JGE  nf4done
	VPANDQ (SI), Z15, Z0
	VPANDQ 64(SI), Z15, Z1
	VPMAXUW Z1, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPMAXUW Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMAXUW X1, X0, X0
	VPCMPEQB X1, X1, X1
	VPXOR X1, X0, X0
	VPHMINPOSUW X0, X0
	VMOVD X0, AX
	NOTL AX
	ANDL $0xFFFF, AX             // absmax bits
	CMPL AX, $0x7C00
	JAE  nf4done
	MOVW AX, (R8)
	TESTL AX, AX
	JZ   nf4zero

	// T_k = m_k · a, each broadcast to a register.
	VMOVD AX, X0
	VCVTPH2PS X0, X0
	VBROADCASTSS X0, Z0
	VMULPS (R10), Z0, Z0
	VMOVUPS Z0, 0(SP)
	VBROADCASTSS 0(SP), Z16
	VBROADCASTSS 4(SP), Z17
	VBROADCASTSS 8(SP), Z18
	VBROADCASTSS 12(SP), Z19
	VBROADCASTSS 16(SP), Z20
	VBROADCASTSS 20(SP), Z21
	VBROADCASTSS 24(SP), Z22
	VBROADCASTSS 28(SP), Z23
	VBROADCASTSS 32(SP), Z24
	VBROADCASTSS 36(SP), Z25
	VBROADCASTSS 40(SP), Z26
	VBROADCASTSS 44(SP), Z27
	VBROADCASTSS 48(SP), Z28
	VBROADCASTSS 52(SP), Z29
	VBROADCASTSS 56(SP), Z30

// code = #{k: v ≥ T_k} (ordered: no NaN reaches here), then the codes of
// elements 2i and 2i+1, one per dword of a qword, folded into one byte.
#define NF4STEP(t) \
	VCMPPS $0x1d, t, Z0, K1; \
	VCMPPS $0x1d, t, Z2, K2; \
	VPADDD Z31, Z1, K1, Z1; \
	VPADDD Z31, Z3, K2, Z3

#define NF4(off, out) \
	VCVTPH2PS off(SI), Z0; \
	VCVTPH2PS off+32(SI), Z2; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z3, Z3, Z3; \
	NF4STEP(Z16); NF4STEP(Z17); NF4STEP(Z18); NF4STEP(Z19); NF4STEP(Z20); \
	NF4STEP(Z21); NF4STEP(Z22); NF4STEP(Z23); NF4STEP(Z24); NF4STEP(Z25); \
	NF4STEP(Z26); NF4STEP(Z27); NF4STEP(Z28); NF4STEP(Z29); NF4STEP(Z30); \
	VPSRLQ $28, Z1, Z4; \
	VPSRLQ $28, Z3, Z5; \
	VPORQ Z4, Z1, Z1; \
	VPORQ Z5, Z3, Z3; \
	VPMOVQB Z1, out(DI); \
	VPMOVQB Z3, out+8(DI)

	NF4(0, 0)
	NF4(64, 16)
	JMP  nf4next

nf4zero:
	MOVQ $0x7777777777777777, AX
	MOVQ AX, (DI)
	MOVQ AX, 8(DI)
	MOVQ AX, 16(DI)
	MOVQ AX, 24(DI)

nf4next:
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $2, R8
	INCQ R9
	JMP  nf4loop

nf4done:
	MOVQ R9, ret+40(FP)
	VZEROUPPER
	RET
