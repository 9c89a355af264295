package runner

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

type kernelSet struct {
	name         string
	avx2, avx512 bool
}

// forKernelSets runs f once with each kernel set this CPU has.
func forKernelSets(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	defer useAssembly(hasAVX2, hasAVX512)
	for _, ks := range kernelSets() {
		useAssembly(ks.avx2, ks.avx512)
		t.Run(ks.name, f)
	}
}

func randFloats(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = rng.Float32()*2 - 1
	}
	return v
}

// checkDot compares got with Σ w·x in float64; float32 sums in any order
// stay within 1e-5·Σ|w·x| for these lengths.
func checkDot(t *testing.T, what string, got float32, w func(c int) float32, x []float32) {
	t.Helper()
	var want, scale float64
	for c := range x {
		p := float64(w(c)) * float64(x[c])
		want += p
		scale += math.Abs(p)
	}
	if d := math.Abs(float64(got) - want); d > 1e-5*scale+1e-30 {
		t.Errorf("%s: got %g, want %g (|diff| %.3g, scale %.3g)", what, got, want, d, scale)
	}
}

func TestRowKernels(t *testing.T) { forKernelSets(t, testRowKernels) }

func testRowKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, rows := range []int{1, 3, 4, 5, 8, 13} {
		for _, k := range []int{1, 7, 8, 9, 15, 16, 17, 64, 200, 264} {
			ldw := k + 3
			w := randFloats(rng, rows*ldw)
			x := randFloats(rng, k)
			h := make([]uint16, len(w))
			bf := make([]uint16, len(w))
			for i, v := range w {
				h[i] = format.F32ToF16(v)
				bf[i] = uint16(math.Float32bits(v) >> 16)
			}
			out := make([]float32, rows)
			dotRowsF32(out, w, ldw, x, k)
			for r := range rows {
				checkDot(t, fmt.Sprintf("f32 %dx%d row %d", rows, k, r), out[r], func(c int) float32 { return w[r*ldw+c] }, x)
			}
			dotRowsF16(out, h, ldw, x, k)
			for r := range rows {
				checkDot(t, fmt.Sprintf("f16 %dx%d row %d", rows, k, r), out[r], func(c int) float32 { return format.F16ToF32(h[r*ldw+c]) }, x)
			}
			dotRowsBF16(out, bf, ldw, x, k)
			for r := range rows {
				checkDot(t, fmt.Sprintf("bf16 %dx%d row %d", rows, k, r), out[r], func(c int) float32 { return math.Float32frombits(uint32(bf[r*ldw+c]) << 16) }, x)
			}
			wide := make([]float32, len(h))
			widenF16(wide, h)
			for i := range wide {
				if wide[i] != format.F16ToF32(h[i]) {
					t.Fatalf("widenF16 element %d: %g, want %g", i, wide[i], format.F16ToF32(h[i]))
				}
			}
			widenBF16(wide, bf)
			for i := range wide {
				if want := math.Float32frombits(uint32(bf[i]) << 16); wide[i] != want {
					t.Fatalf("widenBF16 element %d: %g, want %g", i, wide[i], want)
				}
			}
		}
	}
}

func TestGemmKernels(t *testing.T) { forKernelSets(t, testGemmKernels) }

func testGemmKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	{
		for _, rows := range []int{1, 4, 6, 8, 13} {
			for _, k := range []int{5, 8, 16, 24, 33, 64, 96, 800, 1552} { // > kBlock: passes that add
				for _, T := range []int{1, 2, 3, 5, 6, 7, 13} {
					ldw, ldx, ldo := k+1, k+5, rows+2
					w := randFloats(rng, rows*ldw)
					x := randFloats(rng, T*ldx)
					out := randFloats(rng, T*ldo) // garbage the kernel must overwrite
					gemmF32(out, ldo, w, ldw, rows, x, ldx, T, k)
					for tt := range T {
						for r := range rows {
							checkDot(t, fmt.Sprintf("rows %d k %d T %d: token %d row %d", rows, k, T, tt, r),
								out[tt*ldo+r], func(c int) float32 { return w[r*ldw+c] }, x[tt*ldx:tt*ldx+k])
						}
					}
				}
			}
		}
	}
}

// A token's products do not depend on the tokens beside it in a call
// (T > 1; one token takes the matrix-vector kernels): a prompt fed in
// pieces, resumed from a saved state, gets the logits of one pass bit for
// bit.
func TestGemmTokensIndependent(t *testing.T) { forKernelSets(t, testGemmTokensIndependent) }

func testGemmTokensIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, rows := range []int{4, 13} {
		for _, k := range []int{64, 96, 1552} {
			const T = 14
			w := randFloats(rng, rows*k)
			x := randFloats(rng, T*k)
			whole := make([]float32, T*rows)
			gemmF32(whole, rows, w, k, rows, x, k, T, k)
			for n := 2; n < T; n++ {
				part := make([]float32, n*rows)
				gemmF32(part, rows, w, k, rows, x[(T-n)*k:], k, n, k)
				for i, v := range part {
					if u := whole[(T-n)*rows+i]; math.Float32bits(u) != math.Float32bits(v) {
						t.Fatalf("rows %d k %d: token %d of the last %d: %g, of all %d: %g", rows, k, i/rows, n, v, T, u)
					}
				}
			}
		}
	}
}

func TestSumKernel(t *testing.T) { forKernelSets(t, testSumKernel) }

func testSumKernel(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 33, 1000} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		var want float32
		for _, v := range x {
			want += v
		}
		if got := sumF32(x); got != want { // small integers: exact in any order
			t.Errorf("sum of %d: %g, want %g", n, got, want)
		}
	}
}

// Every kernel set reproduces the tiny models (the default set is checked
// more thoroughly by TestTinyModels).
func TestTinyModelsEveryKernelSet(t *testing.T) { forKernelSets(t, testTinyModelsPth) }

func testTinyModelsPth(t *testing.T) {
	idx := readTinyIndex(t)
	for _, tm := range idx.Models {
		m := loadFile(t, filepath.Join(tinyDir, tm.Pth))
		ref := readLogits(t, filepath.Join(tinyDir, tm.Logits), tm.Vocab)
		rows := forwardRows(t, m, idx.Tokens)
		for i := range ref {
			if d := maxAbsDiff(rows[i], ref[i]); d > 1e-4 {
				t.Errorf("%s position %d: max |error| %.3g > 1e-4", tm.Pth, i, d)
			}
		}
	}
}

func TestWKV7Kernel(t *testing.T) { forKernelSets(t, testWKV7Kernel) }

func testWKV7Kernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{8, 16, 64} {
		S := randFloats(rng, n*n)
		vecs := make([][]float32, 6)
		for i := range vecs {
			vecs[i] = randFloats(rng, n)
		}
		r, w, k, v, nkk, kka := vecs[0], vecs[1], vecs[2], vecs[3], vecs[4], vecs[5]
		want := append([]float32(nil), S...)
		yWant := make([]float32, n)
		// The definition, in float64.
		for i := range n {
			var sa float64
			for j := range n {
				sa += float64(want[i*n+j]) * float64(nkk[j])
			}
			var y float64
			for j := range n {
				x := float64(want[i*n+j])*float64(w[j]) + sa*float64(kka[j]) + float64(v[i])*float64(k[j])
				want[i*n+j] = float32(x)
				y += x * float64(r[j])
			}
			yWant[i] = float32(y)
		}
		y := make([]float32, n)
		wkv7Head(S, r, w, k, v, nkk, kka, y)
		// Inputs in [−1, 1] and n ≤ 64 terms: float32 error stays below 1e-4.
		if d := maxAbsDiff(S, want); d > 1e-4 {
			t.Errorf("n=%d: state differs by %g", n, d)
		}
		if d := maxAbsDiff(y, yWant); d > 1e-4 {
			t.Errorf("n=%d: output differs by %g", n, d)
		}
	}
}

// The vector exponential and sigmoid stay within 4 float32 ulps (relative
// 5e-7) of the float64 functions, over the range that matters, and give 0
// and 1 (not NaN) far out.
func TestExpSigmoidKernels(t *testing.T) { forKernelSets(t, testExpSigmoidKernels) }

func testExpSigmoidKernels(t *testing.T) {
	var xs []float32
	for x := float32(-100); x <= 100; x += 0.0137 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, -0.0, 1e-8, -1e-8, 88, -87, 200, -200)
	got := make([]float32, len(xs))
	expVec(got, xs)
	for i, x := range xs {
		want := math.Exp(float64(x))
		if x > 88 || x < -87 {
			if math.IsNaN(float64(got[i])) || (x < -87 && got[i] > 1e-37) || (x > 88 && got[i] < 1e38) {
				t.Errorf("exp(%g) = %g", x, got[i])
			}
			continue
		}
		if math.Abs(float64(got[i])-want) > 5e-7*want {
			t.Errorf("exp(%g) = %g, want %g", x, got[i], want)
		}
	}
	sigmoidVec(got, xs)
	for i, x := range xs {
		want := 1 / (1 + math.Exp(-float64(x)))
		if math.Abs(float64(got[i])-want) > 5e-7*want+1e-37 {
			t.Errorf("σ(%g) = %g, want %g", x, got[i], want)
		}
	}
}

func TestReluSquareKernel(t *testing.T) { forKernelSets(t, testReluSquareKernel) }

func testReluSquareKernel(t *testing.T) {
	x := []float32{-2, -0.0, 0, 0.5, 3, -1e-30, 1e-20, -7, 2, 1, -1, 4, 5}
	want := make([]float32, len(x))
	for i, v := range x {
		if v > 0 {
			want[i] = v * v
		}
	}
	got := append([]float32(nil), x...)
	reluSquare(got)
	for i := range got {
		if got[i] != want[i] || math.Signbit(float64(got[i])) {
			t.Errorf("relu²(%g) = %g, want %g", x[i], got[i], want[i])
		}
	}
}
