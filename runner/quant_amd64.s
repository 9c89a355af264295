#include "textflag.h"
#include "kernels_amd64.h"

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
