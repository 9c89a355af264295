#include "textflag.h"

// AVX2 versions of the kernels in codec_amd64.s, eight elements per YMM
// register, for x86-64 CPUs without AVX-512 (Intel Haswell and later, AMD
// Zen 1 to 3). The float32 steps, the keys and the non-finite checks are the
// same as there.

// Dword order that undoes VPACKSSDW/VPACKUSWB's per-lane interleaving.
DATA packperm<>+0(SB)/4, $0
DATA packperm<>+4(SB)/4, $4
DATA packperm<>+8(SB)/4, $1
DATA packperm<>+12(SB)/4, $5
DATA packperm<>+16(SB)/4, $2
DATA packperm<>+20(SB)/4, $6
DATA packperm<>+24(SB)/4, $3
DATA packperm<>+28(SB)/4, $7
GLOBL packperm<>(SB), RODATA|NOPTR, $32

// func int8BlocksAVX2(codes, params *byte, src *uint16, n int) int
TEXT ·int8BlocksAVX2(SB), NOSPLIT, $0-40
	MOVQ codes+0(FP), DI
	MOVQ params+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	XORQ R9, R9
	MOVL $0x80008000, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU packperm<>(SB), Y14
	MOVL $0x437f0000, AX         // 255.0
	VMOVD AX, X13

a8loop:
	CMPQ R9, CX
	JGE  a8done
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVDQU 64(SI), Y2
	VMOVDQU 96(SI), Y3
	VMOVDQU 128(SI), Y4
	VMOVDQU 160(SI), Y5
	VMOVDQU 192(SI), Y6
	VMOVDQU 224(SI), Y7

#define KEY(r, t) \
	VPSRAW $15, r, t; \
	VPOR   Y15, t, t; \
	VPXOR  t, r, r

	KEY(Y0, Y8)
	KEY(Y1, Y9)
	KEY(Y2, Y10)
	KEY(Y3, Y11)
	KEY(Y4, Y8)
	KEY(Y5, Y9)
	KEY(Y6, Y10)
	KEY(Y7, Y11)
	VPMINUW Y1, Y0, Y8
	VPMAXUW Y1, Y0, Y9
	VPMINUW Y3, Y2, Y10
	VPMAXUW Y3, Y2, Y11
	VPMINUW Y10, Y8, Y8
	VPMAXUW Y11, Y9, Y9
	VPMINUW Y5, Y4, Y10
	VPMAXUW Y5, Y4, Y11
	VPMINUW Y10, Y8, Y8
	VPMAXUW Y11, Y9, Y9
	VPMINUW Y7, Y6, Y10
	VPMAXUW Y7, Y6, Y11
	VPMINUW Y10, Y8, Y8
	VPMAXUW Y11, Y9, Y9
	VEXTRACTI128 $1, Y8, X10
	VEXTRACTI128 $1, Y9, X11
	VPMINUW X10, X8, X4
	VPMAXUW X11, X9, X6
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
	JB   a8done
	CMPL BX, $0xFBFF
	JA   a8done

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
	JEQ  a8scale
	VDIVSS X9, X13, X10          // s = 255 / R

a8scale:
	VBROADCASTSS X8, Y8
	VBROADCASTSS X10, Y10

// Codes lie in 0…255, so the saturating packs keep them as they are.
#define A8(off, out) \
	VCVTPH2PS off(SI), Y0; \
	VCVTPH2PS off+16(SI), Y1; \
	VCVTPH2PS off+32(SI), Y2; \
	VCVTPH2PS off+48(SI), Y3; \
	VSUBPS Y8, Y0, Y0; \
	VSUBPS Y8, Y1, Y1; \
	VSUBPS Y8, Y2, Y2; \
	VSUBPS Y8, Y3, Y3; \
	VMULPS Y10, Y0, Y0; \
	VMULPS Y10, Y1, Y1; \
	VMULPS Y10, Y2, Y2; \
	VMULPS Y10, Y3, Y3; \
	VCVTPS2DQ Y0, Y0; \
	VCVTPS2DQ Y1, Y1; \
	VCVTPS2DQ Y2, Y2; \
	VCVTPS2DQ Y3, Y3; \
	VPACKSSDW Y1, Y0, Y0; \
	VPACKSSDW Y3, Y2, Y2; \
	VPACKUSWB Y2, Y0, Y0; \
	VPERMD Y0, Y14, Y0; \
	VMOVDQU Y0, out(DI)

	A8(0, 0)
	A8(64, 32)
	A8(128, 64)
	A8(192, 96)

	ADDQ $256, SI
	ADDQ $128, DI
	ADDQ $4, R8
	INCQ R9
	JMP  a8loop

a8done:
	MOVQ R9, ret+32(FP)
	VZEROUPPER
	RET

// func nf4BlocksAVX2(codes, params *byte, src *uint16, n int, mid *float32) int
TEXT ·nf4BlocksAVX2(SB), NOSPLIT, $96-48
	MOVQ codes+0(FP), DI
	MOVQ params+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	MOVQ mid+32(FP), R10
	XORQ R9, R9
	MOVL $0x7FFF7FFF, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU packperm<>(SB), Y14
	MOVL $0x00FF00FF, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13

b4loop:
	CMPQ R9, CX
	JGE  b4done
	VPAND (SI), Y15, Y0
	VPAND 32(SI), Y15, Y1
	VPAND 64(SI), Y15, Y2
	VPAND 96(SI), Y15, Y3
	VPMAXUW Y1, Y0, Y0
	VPMAXUW Y3, Y2, Y2
	VPMAXUW Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMAXUW X1, X0, X0
	VPCMPEQB X1, X1, X1
	VPXOR X1, X0, X0
	VPHMINPOSUW X0, X0
	VMOVD X0, AX
	NOTL AX
	ANDL $0xFFFF, AX             // absmax bits
	CMPL AX, $0x7C00
	JAE  b4done
	MOVW AX, (R8)
	TESTL AX, AX
	JZ   b4zero

	// T_k = m_k · a, kept on the stack and broadcast as needed.
	VMOVD AX, X0
	VCVTPH2PS X0, X0
	VBROADCASTSS X0, Y0
	VMULPS (R10), Y0, Y1
	VMULPS 32(R10), Y0, Y2
	VMOVUPS Y1, 0(SP)
	VMOVUPS Y2, 32(SP)

// code = #{k: v ≥ T_k} (ordered: no NaN reaches here): each all-ones
// compare mask subtracts −1.
#define B4STEP(k) \
	VBROADCASTSS k*4(SP), Y12; \
	VCMPPS $0x1d, Y12, Y0, Y8; \
	VCMPPS $0x1d, Y12, Y1, Y9; \
	VCMPPS $0x1d, Y12, Y2, Y10; \
	VCMPPS $0x1d, Y12, Y3, Y11; \
	VPSUBD Y8, Y4, Y4; \
	VPSUBD Y9, Y5, Y5; \
	VPSUBD Y10, Y6, Y6; \
	VPSUBD Y11, Y7, Y7

// The codes of 32 elements as 16 words holding one code byte each: bytes
// c0…c31 in order, then word i = c(2i) | c(2i+1)<<4 | c(2i+1)<<8, masked.
#define B4(off, dst) \
	VCVTPH2PS off(SI), Y0; \
	VCVTPH2PS off+16(SI), Y1; \
	VCVTPH2PS off+32(SI), Y2; \
	VCVTPH2PS off+48(SI), Y3; \
	VPXOR Y4, Y4, Y4; \
	VPXOR Y5, Y5, Y5; \
	VPXOR Y6, Y6, Y6; \
	VPXOR Y7, Y7, Y7; \
	B4STEP(0); B4STEP(1); B4STEP(2); B4STEP(3); B4STEP(4); \
	B4STEP(5); B4STEP(6); B4STEP(7); B4STEP(8); B4STEP(9); \
	B4STEP(10); B4STEP(11); B4STEP(12); B4STEP(13); B4STEP(14); \
	VPACKSSDW Y5, Y4, Y4; \
	VPACKSSDW Y7, Y6, Y6; \
	VPACKUSWB Y6, Y4, Y4; \
	VPERMD Y4, Y14, Y4; \
	VPSRLW $4, Y4, Y5; \
	VPOR Y5, Y4, Y4; \
	VPAND Y13, Y4, dst

	B4(0, Y4)
	VMOVDQU Y4, 64(SP)
	B4(64, Y4)
	VMOVDQU 64(SP), Y5
	VPACKUSWB Y4, Y5, Y5
	VPERMQ $0xD8, Y5, Y5
	VMOVDQU Y5, (DI)
	JMP  b4next

b4zero:
	MOVQ $0x7777777777777777, AX
	MOVQ AX, (DI)
	MOVQ AX, 8(DI)
	MOVQ AX, 16(DI)
	MOVQ AX, 24(DI)

b4next:
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $2, R8
	INCQ R9
	JMP  b4loop

b4done:
	MOVQ R9, ret+40(FP)
	VZEROUPPER
	RET
