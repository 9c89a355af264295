package runner

import (
	"math"

	"github.com/rwkvkit/rwkvkit/format"
)

// The kernels below are the portable forms of the inner loops. kernels_amd64.go
// replaces the function variables with assembly when the CPU allows; tests
// compare both forms.

var (
	// dotRowsF32 sets out[i] = Σ_{c<k} w[i·ldw+c]·x[c] for i < len(out).
	dotRowsF32 = dotRowsF32Go
	// dotRowsF16 is dotRowsF32 for float16 weights.
	dotRowsF16 = dotRowsF16Go
	// dotRowsBF16 is dotRowsF32 for bfloat16 weights.
	dotRowsBF16 = dotRowsBF16Go
	// gemmF32 sets out[t·ldo+r] = Σ_{c<k} w[r·ldw+c]·x[t·ldx+c] for r < rows, t < T.
	gemmF32 = gemmF32Go
	// widenF16 and widenBF16 convert len(dst) elements of src to float32.
	widenF16  = widenF16Go
	widenBF16 = widenBF16Go
	// sumF32 returns Σ x[i].
	sumF32 = sumF32Go
	// wkv7Head advances one v7 head by one token (see wkv7HeadGo).
	wkv7Head = wkv7HeadGo
	// expVec sets dst[i] = e^src[i]; sigmoidVec sets dst[i] = σ(src[i]).
	// The assembly forms are within a few float32 ulps of these.
	expVec     = expVecGo
	sigmoidVec = sigmoidVecGo
	// reluSquare sets x[i] = max(x[i], 0)².
	reluSquare = reluSquareGo
	// int8Rows and nf4Rows, where the CPU has them, compute the block-scaled
	// code sums of quantized rows whose blocks start at the row start (see
	// int8Matrix.mulVec and nf4Matrix.mulVec); nil elsewhere.
	int8Rows func(q []uint8, cols int, x, scale, out []float32)
	nf4Rows  func(codes []uint8, cols int, xp, absmax, out []float32)
)

// reluSquareGo clears the sign-bit-set values without a branch: activations
// are negative half the time at random, which a branch mispredicts.
func reluSquareGo(x []float32) {
	for i, v := range x {
		b := math.Float32bits(v)
		b &^= uint32(int32(b) >> 31)
		v = math.Float32frombits(b)
		x[i] = v * v
	}
}

func expVecGo(dst, src []float32) {
	src = src[:len(dst)]
	for i, x := range src {
		dst[i] = float32(math.Exp(float64(x)))
	}
}

func sigmoidVecGo(dst, src []float32) {
	src = src[:len(dst)]
	for i, x := range src {
		dst[i] = float32(1 / (1 + math.Exp(-float64(x))))
	}
}

// kBlockGo is the depth of one pass over the weights in the assembly
// matrix-matrix product; tiles are sized for it.
const kBlockGo = 768

func dotGo(w, x []float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(w); i += 8 {
		a, b := w[i:i+8:i+8], x[i:i+8:i+8]
		s0 += a[0] * b[0]
		s1 += a[1] * b[1]
		s2 += a[2] * b[2]
		s3 += a[3] * b[3]
		s4 += a[4] * b[4]
		s5 += a[5] * b[5]
		s6 += a[6] * b[6]
		s7 += a[7] * b[7]
	}
	for ; i < len(w); i++ {
		s0 += w[i] * x[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

func dotRowsF32Go(out, w []float32, ldw int, x []float32, k int) {
	for i := range out {
		out[i] = dotGo(w[i*ldw:i*ldw+k], x[:k])
	}
}

func dotF16Go(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(w); i += 4 {
		a, b := w[i:i+4:i+4], x[i:i+4:i+4]
		s0 += format.F16ToF32(a[0]) * b[0]
		s1 += format.F16ToF32(a[1]) * b[1]
		s2 += format.F16ToF32(a[2]) * b[2]
		s3 += format.F16ToF32(a[3]) * b[3]
	}
	for ; i < len(w); i++ {
		s0 += format.F16ToF32(w[i]) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotRowsF16Go(out []float32, w []uint16, ldw int, x []float32, k int) {
	for i := range out {
		out[i] = dotF16Go(w[i*ldw:i*ldw+k], x[:k])
	}
}

func bf16(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

func dotBF16Go(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(w); i += 4 {
		a, b := w[i:i+4:i+4], x[i:i+4:i+4]
		s0 += bf16(a[0]) * b[0]
		s1 += bf16(a[1]) * b[1]
		s2 += bf16(a[2]) * b[2]
		s3 += bf16(a[3]) * b[3]
	}
	for ; i < len(w); i++ {
		s0 += bf16(w[i]) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotRowsBF16Go(out []float32, w []uint16, ldw int, x []float32, k int) {
	for i := range out {
		out[i] = dotBF16Go(w[i*ldw:i*ldw+k], x[:k])
	}
}

// gemmF32Go works on 2×2 blocks (two weight rows against two inputs), so each
// loaded element serves two products. A last odd token is paired with
// itself, so that its products sum in the order they would with a partner.
func gemmF32Go(out []float32, ldo int, w []float32, ldw, rows int, x []float32, ldx, T, k int) {
	for t := 0; t < T; t += 2 {
		u := min(t+1, T-1)
		x0, x1 := x[t*ldx:t*ldx+k], x[u*ldx:u*ldx+k]
		r := 0
		for ; r+2 <= rows; r += 2 {
			w0, w1 := w[r*ldw:r*ldw+k], w[(r+1)*ldw:(r+1)*ldw+k]
			var s00, s01, s10, s11 float32
			for c := range w0 {
				a, b := w0[c], w1[c]
				p, q := x0[c], x1[c]
				s00 += a * p
				s01 += a * q
				s10 += b * p
				s11 += b * q
			}
			out[t*ldo+r], out[u*ldo+r] = s00, s01
			out[t*ldo+r+1], out[u*ldo+r+1] = s10, s11
		}
		for ; r < rows; r++ {
			out[t*ldo+r] = dotGo(w[r*ldw:r*ldw+k], x0)
			out[u*ldo+r] = dotGo(w[r*ldw:r*ldw+k], x1)
		}
	}
}

func widenF16Go(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i, h := range src {
		dst[i] = format.F16ToF32(h)
	}
}

func widenBF16Go(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i, h := range src {
		dst[i] = bf16(h)
	}
}

func sumF32Go(x []float32) float32 {
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(x); i += 8 {
		a := x[i : i+8 : i+8]
		s0 += a[0]
		s1 += a[1]
		s2 += a[2]
		s3 += a[3]
		s4 += a[4]
		s5 += a[5]
		s6 += a[6]
		s7 += a[7]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}
