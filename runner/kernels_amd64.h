// Macros shared by the assembly kernels.

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

// BF16 widens 8 bfloat16 values at m into the YMM register y.
#define BF16(m, y) \
	VPMOVZXWD m, y \
	VPSLLD $16, y, y

// STORE writes the four sums in x to m, adding what m holds when R12 ≠ 0
// (a later block of a product split along k).
#define STORE(x, m) \
	TESTQ R12, R12 \
	JEQ 2(PC) \
	VADDPS m, x, x \
	VMOVUPS x, m

// FOLD adds the high 256 bits of z into its low 256 bits (y of the same
// register), through the temporary t/yt. The add is 512 bits wide (AVX512F
// alone has no 256-bit EVEX add); only the low half is used afterwards.
#define FOLD(z, t, yt) \
	VEXTRACTF64X4 $1, z, yt \
	VADDPS t, z, z
