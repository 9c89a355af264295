package lora

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

var (
	F16  = format.F16
	F32  = format.F32
	BF16 = format.BF16
)

// TestMergeHandChecked merges a rank-2 pair whose product was worked out
// by hand:
//
//	A = lora.0 = [[1,0],[0,1],[1,1]] (in 3, rank 2), B = lora.1 = [[1,2],[3,4]]
//	B·Aᵀ = [[1,2,3],[3,4,7]]; alpha 4, rank 2 → scale 2
//	W = [[1,2,3],[4,5,6]] → [[3,6,9],[10,13,20]] (all exact in F16, BF16, F32)
func TestMergeHandChecked(t *testing.T) {
	want := []float32{3, 6, 9, 10, 13, 20}
	for _, dt := range []format.DType{F16, BF16, F32} {
		for _, factors := range []format.DType{F16, F32, BF16} {
			base := source(tensor(t, "blocks.0.att.key.weight", dt, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}))
			a := mustOpen(t,
				tensor(t, "blocks.0.att.key.lora.0", factors, []int64{3, 2}, []float32{1, 0, 0, 1, 1, 1}),
				tensor(t, "blocks.0.att.key.lora.1", factors, []int64{2, 2}, []float32{1, 2, 3, 4}))
			m := mustMerge(t, base, Blend{Adapter: a, Alpha: 4})
			tt := m.Lookup("blocks.0.att.key.weight")
			if tt.DType != dt || !slices.Equal(tt.Shape, []int64{2, 3}) {
				t.Fatalf("%v: merged tensor is %v %v", dt, tt.DType, tt.Shape)
			}
			if got := values(t, m, tt.Name); !slices.Equal(got, want) {
				t.Errorf("base %v, factors %v: got %v, want %v", dt, factors, got, want)
			}
		}
	}
}

// TestRoundOnce checks that the result is rounded once, to nearest even,
// to the base's dtype, after all adapters: at 1.0 a float16 ulp is 2⁻¹⁰ and
// a bfloat16 ulp is 2⁻⁷.
func TestRoundOnce(t *testing.T) {
	cases := []struct {
		name   string
		dt     format.DType
		deltas []float32 // one rank-1 adapter each, alpha 1
		want   uint16
	}{
		{"f16 half ulp ties to even", F16, []float32{0x1p-11}, 0x3c00},
		{"f16 just above half ulp", F16, []float32{0x1p-11 + 0x1p-20}, 0x3c01},
		{"f16 one and a half ulp ties to even", F16, []float32{3 * 0x1p-11}, 0x3c02},
		{"f16 two half ulps, one rounding", F16, []float32{0x1p-11, 0x1p-11}, 0x3c01},
		{"f16 negative", F16, []float32{-2.5}, 0xbe00},              // 1 − 2.5 = −1.5
		{"f16 overflow to infinity", F16, []float32{65520}, 0x7c00}, // ≥ 65520 rounds up
		{"bf16 half ulp ties to even", BF16, []float32{0x1p-8}, 0x3f80},
		{"bf16 one and a half ulp ties to even", BF16, []float32{3 * 0x1p-8}, 0x3f82},
		{"bf16 just below half ulp", BF16, []float32{0x1p-8 - 0x1p-20}, 0x3f80},
		{"bf16 just above half ulp", BF16, []float32{0x1p-8 + 0x1p-20}, 0x3f81},
		{"bf16 two half ulps, one rounding", BF16, []float32{0x1p-8, 0x1p-8}, 0x3f81},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := source(tensor(t, "x.weight", c.dt, []int64{1, 1}, []float32{1}))
			var blends []Blend
			for _, d := range c.deltas {
				a := mustOpen(t,
					tensor(t, "x.lora.0", F32, []int64{1, 1}, []float32{1}),
					tensor(t, "x.lora.1", F32, []int64{1, 1}, []float32{d}))
				blends = append(blends, Blend{Adapter: a, Alpha: 1})
			}
			got := f16bits(t, mustMerge(t, base, blends...), "x.weight")
			if got[0] != c.want {
				t.Errorf("got %#04x, want %#04x", got[0], c.want)
			}
		})
	}
}

// TestAlphaZero: alpha 0 leaves every tensor's bytes as they were, even
// where the update is NaN (0·NaN would not be 0).
func TestAlphaZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := randVals(rng, 12, F16)
	v := randVals(rng, 4, F16)
	base := source(
		tensor(t, "blocks.0.att.key.weight", F16, []int64{3, 4}, w),
		tensor(t, "blocks.0.att.time_mix_k", F16, []int64{1, 1, 4}, v))
	nan := float32(math.NaN())
	a := mustOpen(t,
		tensor(t, "blocks.0.att.key.lora.0", F32, []int64{4, 2}, randVals(rng, 8, F32)),
		tensor(t, "blocks.0.att.key.lora.1", F32, []int64{3, 2}, []float32{1, 2, 3, nan, 5, 6}),
		tensor(t, "blocks.0.att.time_mix_k", F16, []int64{1, 1, 4}, []float32{1, nan, 3, 4}))
	m := mustMerge(t, base, Blend{Adapter: a, Alpha: 0})
	for i, tt := range base.Tensors {
		if m.Tensors[i] != tt {
			t.Errorf("%s: not passed through", tt.Name)
		}
		if !bytes.Equal(raw(t, m, tt.Name), raw(t, base, tt.Name)) {
			t.Errorf("%s: bytes changed", tt.Name)
		}
	}
	// Alpha 0 by pattern only for the matrix: the vector still changes.
	m = mustMerge(t, base, Blend{Adapter: a, Alpha: 1, Patterns: []Pattern{pattern(t, `key`, 0)}})
	if m.Tensors[0] != base.Tensors[0] || m.Tensors[1] == base.Tensors[1] {
		t.Errorf("pattern alpha 0: key passed through %v (want true), time_mix_k %v (want false)",
			m.Tensors[0] == base.Tensors[0], m.Tensors[1] == base.Tensors[1])
	}
}

// TestFullTensors: a full matrix is added (W + alpha·L), a full vector is
// interpolated (alpha·L + (1 − alpha)·v), as web-rwkv does.
func TestFullTensors(t *testing.T) {
	base := source(
		tensor(t, "blocks.0.att.key.weight", F32, []int64{2, 2}, []float32{1, 2, 3, 4}),
		tensor(t, "blocks.0.att.time_mix_k", F32, []int64{1, 1, 4}, []float32{1, 2, 3, 4}),
		tensor(t, "blocks.0.ln1.weight", F32, []int64{2}, []float32{8, -8}),
		tensor(t, "blocks.0.att.w1", F32, []int64{2, 2}, []float32{1, 1, 1, 1}),
		tensor(t, "blocks.0.att.time_decay", F32, []int64{2, 2}, []float32{4, 4, 4, 4}))
	a := mustOpen(t,
		tensor(t, "blocks.0.att.key.weight", F32, []int64{2, 2}, []float32{10, 20, 30, 40}),
		// [4] against the base's [1, 1, 4]: vectors are compared flat.
		tensor(t, "blocks.0.att.time_mix_k", F32, []int64{4}, []float32{5, 6, 7, 8}),
		tensor(t, "blocks.0.ln1.weight", F32, []int64{2}, []float32{0, 0}),
		tensor(t, "blocks.0.att.w1", F32, []int64{2, 2}, []float32{2, 2, 2, 2}),
		tensor(t, "blocks.0.att.time_decay", F32, []int64{2, 2}, []float32{0, 8, 0, 8}))
	m := mustMerge(t, base, Blend{Adapter: a, Alpha: 0.5})
	want := map[string][]float32{
		"blocks.0.att.key.weight": {6, 12, 18, 24}, // W + 0.5·L
		"blocks.0.att.time_mix_k": {3, 4, 5, 6},    // 0.5·L + 0.5·v
		"blocks.0.ln1.weight":     {4, -4},         // 0.5·0 + 0.5·v
		"blocks.0.att.w1":         {2, 2, 2, 2},    // v7 w1 is a matrix: added
		"blocks.0.att.time_decay": {2, 6, 2, 6},    // v5.2's [H, S] decay is a vector
	}
	for name, w := range want {
		if got := values(t, m, name); !slices.Equal(got, w) {
			t.Errorf("%s: got %v, want %v", name, got, w)
		}
	}
	// alpha 1 replaces a vector.
	m = mustMerge(t, base, Blend{Adapter: a, Alpha: 1})
	if got := values(t, m, "blocks.0.att.time_mix_k"); !slices.Equal(got, []float32{5, 6, 7, 8}) {
		t.Errorf("alpha 1: time_mix_k = %v, want the adapter's [5 6 7 8]", got)
	}
}

// TestSequenceEqualsSum: two adapters merged one after the other equal one
// adapter whose factors are their concatenation [A1 A2], [B1 B2], since
// B·Aᵀ = B1·A1ᵀ + B2·A2ᵀ. The scales agree: alpha/rank = 1/2 for ranks 2
// and 3 with alphas 1 and 1.5, and for rank 5 with alpha 2.5.
func TestSequenceEqualsSum(t *testing.T) {
	const out, in, r1, r2 = 7, 5, 2, 3
	build := func(dt format.DType, w, a1, b1, a2, b2 []float32) (sequential, atOnce *format.Source) {
		base := source(tensor(t, "m.weight", dt, []int64{out, in}, w))
		first := mustOpen(t,
			tensor(t, "m.lora.0", F32, []int64{in, r1}, a1),
			tensor(t, "m.lora.1", F32, []int64{out, r1}, b1))
		second := mustOpen(t,
			tensor(t, "m.lora.0", F32, []int64{in, r2}, a2),
			tensor(t, "m.lora.1", F32, []int64{out, r2}, b2))
		cat := func(x, y []float32, rows, rx, ry int) []float32 {
			var c []float32
			for i := 0; i < rows; i++ {
				c = append(c, x[i*rx:(i+1)*rx]...)
				c = append(c, y[i*ry:(i+1)*ry]...)
			}
			return c
		}
		both := mustOpen(t,
			tensor(t, "m.lora.0", F32, []int64{in, r1 + r2}, cat(a1, a2, in, r1, r2)),
			tensor(t, "m.lora.1", F32, []int64{out, r1 + r2}, cat(b1, b2, out, r1, r2)))
		sequential = mustMerge(t, base, Blend{Adapter: first, Alpha: 1}, Blend{Adapter: second, Alpha: 1.5})
		atOnce = mustMerge(t, base, Blend{Adapter: both, Alpha: 2.5})
		return sequential, atOnce
	}

	t.Run("exact", func(t *testing.T) {
		// Small integers and halves: every float32 operation is exact, so
		// the two orders of summation give the same bytes.
		ints := func(n, seed int) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32((i*7+seed)%9 - 4)
			}
			return v
		}
		w := seq(out*in, -8, 0.5)
		s1, s2 := build(F16, w, ints(in*r1, 1), ints(out*r1, 2), ints(in*r2, 3), ints(out*r2, 4))
		if a, b := raw(t, s1, "m.weight"), raw(t, s2, "m.weight"); !bytes.Equal(a, b) {
			t.Errorf("in sequence %v, at once %v", hex16(f16bits(t, s1, "m.weight")), hex16(f16bits(t, s2, "m.weight")))
		}
		if got := values(t, s1, "m.weight"); slices.Equal(got, w) {
			t.Error("the adapters changed nothing")
		}
	})

	t.Run("float32", func(t *testing.T) {
		// Random values in an F32 base, so the results are compared before
		// any rounding but float32's. Each result is within
		// γ·(|W| + Σₖ|s·pₖ·qₖ|) of the exact value, γ = n·2⁻²⁴ for n ≤ r+3
		// roundings on the way; the two may differ by twice that (n = 8).
		rng := rand.New(rand.NewPCG(3, 4))
		w := randVals(rng, out*in, F32)
		a1, b1 := randVals(rng, in*r1, F32), randVals(rng, out*r1, F32)
		a2, b2 := randVals(rng, in*r2, F32), randVals(rng, out*r2, F32)
		s1, s2 := build(F32, w, a1, b1, a2, b2)
		x, y := values(t, s1, "m.weight"), values(t, s2, "m.weight")
		for o := 0; o < out; o++ {
			for i := 0; i < in; i++ {
				mag := math.Abs(float64(w[o*in+i]))
				exact := float64(w[o*in+i])
				for k := 0; k < r1; k++ {
					p := 0.5 * float64(b1[o*r1+k]) * float64(a1[i*r1+k])
					mag, exact = mag+math.Abs(p), exact+p
				}
				for k := 0; k < r2; k++ {
					p := 0.5 * float64(b2[o*r2+k]) * float64(a2[i*r2+k])
					mag, exact = mag+math.Abs(p), exact+p
				}
				tol := 2 * 8 * 0x1p-24 * mag
				j := o*in + i
				if d := math.Abs(float64(x[j]) - float64(y[j])); d > tol {
					t.Errorf("[%d,%d]: in sequence %g, at once %g: differ by %g > %g", o, i, x[j], y[j], d, tol)
				}
				if d := math.Abs(float64(x[j]) - exact); d > tol/2 {
					t.Errorf("[%d,%d]: %g is %g from the exact %g (> %g)", o, i, x[j], d, exact, tol/2)
				}
			}
		}
	})
}

// TestNamingsAgree: the same adapter in web-rwkv names (lora.0 [in, r]),
// in RWKV-LM/PEFT names (lora_A [r, in]), and the latter put through
// web-rwkv's converter (format.WebRWKV), give the same merged bytes.
func TestNamingsAgree(t *testing.T) {
	const out, in, r = 6, 4, 3
	rng := rand.New(rand.NewPCG(5, 6))
	base := source(
		tensor(t, "blocks.1.ffn.value.weight", F16, []int64{out, in}, randVals(rng, out*in, F16)),
		tensor(t, "blocks.1.ffn.time_mix_k", F16, []int64{1, 1, in}, randVals(rng, in, F16)))
	a, b := randVals(rng, in*r, F16), randVals(rng, out*r, F16)
	mix := randVals(rng, in, F16)
	web := mustOpen(t,
		tensor(t, "blocks.1.ffn.value.lora.0", F16, []int64{in, r}, a),
		tensor(t, "blocks.1.ffn.value.lora.1", F16, []int64{out, r}, b),
		tensor(t, "blocks.1.ffn.time_mix_k", F16, []int64{1, 1, in}, mix))
	peftSrc := source(
		tensor(t, "blocks.1.ffn.value.lora_A", F16, []int64{r, in}, transposed(a, in, r)),
		tensor(t, "blocks.1.ffn.value.lora_B", F16, []int64{out, r}, b),
		tensor(t, "blocks.1.ffn.time_maa_k", F16, []int64{1, 1, in}, mix))
	peft := mustOpen(t, peftSrc.Tensors...)
	convertedSrc, err := format.WebRWKV(peftSrc)
	if err != nil {
		t.Fatal(err)
	}
	converted, err := Open(convertedSrc)
	if err != nil {
		t.Fatal(err)
	}
	if web.Naming != NamingWebRWKV || peft.Naming != NamingRWKVLM || converted.Naming != NamingWebRWKV {
		t.Fatalf("namings %v, %v, %v", web.Naming, peft.Naming, converted.Naming)
	}
	var results [][]byte
	for _, ad := range []*Adapter{web, peft, converted} {
		m := mustMerge(t, base, Blend{Adapter: ad, Alpha: 0.75})
		results = append(results, append(raw(t, m, "blocks.1.ffn.value.weight"), raw(t, m, "blocks.1.ffn.time_mix_k")...))
	}
	if bytes.Equal(results[0], append(raw(t, base, "blocks.1.ffn.value.weight"), raw(t, base, "blocks.1.ffn.time_mix_k")...)) {
		t.Fatal("the adapter changed nothing")
	}
	if !bytes.Equal(results[0], results[1]) || !bytes.Equal(results[0], results[2]) {
		t.Errorf("web-rwkv, PEFT and converted PEFT names give different bytes:\n% x\n% x\n% x", results[0], results[1], results[2])
	}
}

// TestPatterns: the last matching pattern sets the alpha, else the blend's.
func TestPatterns(t *testing.T) {
	names := []string{
		"blocks.0.att.key.weight",   // `att`, `att\.key`, `blocks\.0\.` → 3
		"blocks.1.att.key.weight",   // `att`, `att\.key` → 0
		"blocks.1.att.value.weight", // `att` → 2
		"blocks.1.ffn.key.weight",   // none → 0.5
	}
	want := []float32{3, 0, 2, 0.5}
	var baseTs, loraTs []*format.Tensor
	for _, n := range names {
		baseTs = append(baseTs, tensor(t, n, F32, []int64{1, 1}, []float32{10}))
		m := strings.TrimSuffix(n, ".weight")
		loraTs = append(loraTs,
			tensor(t, m+".lora.0", F32, []int64{1, 1}, []float32{1}),
			tensor(t, m+".lora.1", F32, []int64{1, 1}, []float32{1}))
	}
	b := Blend{Adapter: mustOpen(t, loraTs...), Alpha: 0.5, Patterns: []Pattern{
		pattern(t, `att`, 2), pattern(t, `att\.key`, 0), pattern(t, `blocks\.0\.`, 3),
	}}
	m := mustMerge(t, source(baseTs...), b)
	for i, n := range names {
		if got := b.AlphaFor(n); got != want[i] {
			t.Errorf("AlphaFor(%q) = %v, want %v", n, got, want[i])
		}
		if got := values(t, m, n)[0]; got != 10+want[i] {
			t.Errorf("%s: %v, want %v", n, got, 10+want[i])
		}
	}
}

// rwkvLMBase is a small RWKV-6 in RWKV-LM layout: time_maa_w1 is [C, 5·D]
// and time_maa_w2 [5, D, C], both transposed in web-rwkv's layout.
func rwkvLMBase(t *testing.T, rng *rand.Rand) *format.Source {
	const C, D = 4, 2
	return source(
		tensor(t, "emb.weight", F32, []int64{3, C}, randVals(rng, 3*C, F32)),
		tensor(t, "blocks.0.att.time_maa_x", F32, []int64{1, 1, C}, randVals(rng, C, F32)),
		tensor(t, "blocks.0.att.time_maa_w1", F32, []int64{C, 5 * D}, randVals(rng, C*5*D, F32)),
		tensor(t, "blocks.0.att.time_maa_w2", F32, []int64{5, D, C}, randVals(rng, 5*D*C, F32)),
		tensor(t, "blocks.0.att.time_faaaa", F32, []int64{2, 2}, randVals(rng, 4, F32)),
		tensor(t, "blocks.0.att.key.weight", F32, []int64{C, C}, randVals(rng, C*C, F32)))
}

// TestOrientation merges the same adapter into an RWKV-LM base and into
// its web-rwkv conversion: converting after merging must equal merging
// after converting, for pairs on a transposed matrix, for full tensors in
// either naming, and for plain Linear weights. Both are exact in float32.
func TestOrientation(t *testing.T) {
	const C, D, r = 4, 2, 3
	rng := rand.New(rand.NewPCG(7, 8))
	lm := rwkvLMBase(t, rng)
	if info, err := format.Detect(lm); err != nil || info.Layout != format.LayoutRWKVLM {
		t.Fatalf("base: %v %v", info.Layout, err)
	}
	web, err := format.WebRWKV(lm)
	if err != nil {
		t.Fatal(err)
	}
	w2 := randVals(rng, 5*D*C, F32) // a full delta in RWKV-LM orientation [5, D, C]
	var w2web []float32
	for m := 0; m < 5; m++ {
		w2web = append(w2web, transposed(w2[m*D*C:(m+1)*D*C], D, C)...)
	}
	pairA, pairB := randVals(rng, C*r, F32), randVals(rng, 5*D*r, F32)
	keyA, keyB := randVals(rng, C*r, F32), randVals(rng, C*r, F32)
	adapters := map[string]*Adapter{
		"web-rwkv names": mustOpen(t,
			tensor(t, "blocks.0.att.time_mix_w1.lora.0", F32, []int64{C, r}, pairA),
			tensor(t, "blocks.0.att.time_mix_w1.lora.1", F32, []int64{5 * D, r}, pairB),
			tensor(t, "blocks.0.att.time_mix_w2", F32, []int64{5, C, D}, w2web),
			tensor(t, "blocks.0.att.key.lora.0", F32, []int64{C, r}, keyA),
			tensor(t, "blocks.0.att.key.lora.1", F32, []int64{C, r}, keyB)),
		"RWKV-LM names": mustOpen(t,
			tensor(t, "blocks.0.att.time_maa_w1.lora_A", F32, []int64{r, C}, transposed(pairA, C, r)),
			tensor(t, "blocks.0.att.time_maa_w1.lora_B", F32, []int64{5 * D, r}, pairB),
			tensor(t, "blocks.0.att.time_maa_w2", F32, []int64{5, D, C}, w2),
			tensor(t, "blocks.0.att.key.lora_A", F32, []int64{r, C}, transposed(keyA, C, r)),
			tensor(t, "blocks.0.att.key.lora_B", F32, []int64{C, r}, keyB)),
	}
	for name, a := range adapters {
		t.Run(name, func(t *testing.T) {
			mergedLM := mustMerge(t, lm, Blend{Adapter: a, Alpha: 1.5})
			convertedAfter, err := format.WebRWKV(mergedLM)
			if err != nil {
				t.Fatal(err)
			}
			mergedWeb := mustMerge(t, web, Blend{Adapter: a, Alpha: 1.5})
			for _, n := range []string{"blocks.0.att.time_mix_w1", "blocks.0.att.time_mix_w2", "blocks.0.att.key.weight"} {
				x, y := raw(t, convertedAfter, n), raw(t, mergedWeb, n)
				if !bytes.Equal(x, y) {
					t.Errorf("%s: merged then converted differs from converted then merged", n)
				}
				if bytes.Equal(y, raw(t, web, n)) {
					t.Errorf("%s: unchanged", n)
				}
			}
			// And one element by hand: web time_mix_w1[o][i] = W[i][o] in
			// RWKV-LM, plus (1.5/3)·Σₖ B[o][k]·A[i][k].
			o, i := 7, 2
			wLM := values(t, lm, "blocks.0.att.time_maa_w1")
			want := float64(wLM[i*5*D+o])
			for k := 0; k < r; k++ {
				want += 0.5 * float64(pairB[o*r+k]) * float64(pairA[i*r+k])
			}
			got := values(t, mergedLM, "blocks.0.att.time_maa_w1")[i*5*D+o]
			if math.Abs(float64(got)-want) > 8*0x1p-24*math.Abs(want)+1e-7 {
				t.Errorf("time_maa_w1[%d][%d] = %v, want %v", i, o, got, want)
			}
		})
	}
}

// TestErrors: adapters that do not fit are refused, naming the tensor.
func TestErrors(t *testing.T) {
	base := func() *format.Source {
		return source(
			tensor(t, "emb.weight", F16, []int64{4, 3}, make([]float32, 12)),
			tensor(t, "blocks.0.att.key.weight", F16, []int64{2, 3}, make([]float32, 6)),
			tensor(t, "blocks.0.att.time_mix_k", F16, []int64{1, 1, 3}, make([]float32, 3)))
	}
	pair := func(module string, a, b []int64) []*format.Tensor {
		return []*format.Tensor{
			tensor(t, module+".lora.0", F32, a, make([]float32, a[0]*a[1])),
			tensor(t, module+".lora.1", F32, b, make([]float32, b[0]*b[1])),
		}
	}
	cases := []struct {
		name    string
		tensors []*format.Tensor
		want    error
		mention string
	}{
		{"pair for a missing module", pair("blocks.0.att.gate", []int64{3, 1}, []int64{2, 1}), ErrNoTarget, `"blocks.0.att.gate.lora.0"`},
		{"full tensor missing", []*format.Tensor{tensor(t, "blocks.0.att.time_mix_v", F16, []int64{3}, make([]float32, 3))}, ErrNoTarget, `"blocks.0.att.time_mix_v"`},
		{"in of A wrong", pair("blocks.0.att.key", []int64{2, 1}, []int64{2, 1}), ErrShape, `"blocks.0.att.key.lora.0"`},
		{"out of B wrong", pair("blocks.0.att.key", []int64{3, 1}, []int64{3, 1}), ErrShape, `"blocks.0.att.key.lora.1"`},
		{"transposed A", pair("blocks.0.att.key", []int64{1, 3}, []int64{2, 1}), ErrRank, `"blocks.0.att.key.lora.0"`},
		{"ranks disagree", pair("blocks.0.att.key", []int64{3, 2}, []int64{2, 1}), ErrRank, `"blocks.0.att.key.lora.1"`},
		{"full matrix shape", []*format.Tensor{tensor(t, "blocks.0.att.key.weight", F16, []int64{3, 2}, make([]float32, 6))}, ErrShape, `"blocks.0.att.key.weight"`},
		{"full vector size", []*format.Tensor{tensor(t, "blocks.0.att.time_mix_k", F16, []int64{1, 1, 4}, make([]float32, 4))}, ErrShape, `"blocks.0.att.time_mix_k"`},
		{"emb.weight full", []*format.Tensor{tensor(t, "emb.weight", F16, []int64{4, 3}, make([]float32, 12))}, ErrEmbedding, `"emb.weight"`},
		{"emb pair", pair("emb", []int64{3, 1}, []int64{4, 1}), ErrEmbedding, `"emb.lora.0"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := append([]*format.Tensor{}, pair("blocks.0.att.key", []int64{3, 1}, []int64{2, 1})...)
			if strings.Contains(c.tensors[0].Name, "att.key") {
				ts = nil
			}
			ts = append(ts, c.tensors...)
			a, err := Open(source(ts...))
			if err == nil {
				_, err = Merge(context.Background(), base(), []Blend{{Adapter: a, Alpha: 1}}, nil)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("%q does not mention %s", err, c.mention)
			}
		})
	}

	t.Run("quantized base", func(t *testing.T) {
		q, err := format.NewTensor("blocks.0.att.key.weight", format.NF4Block, []int64{2, 3}, format.BytesOpener(make([]byte, 5)))
		if err != nil {
			t.Fatal(err)
		}
		a := mustOpen(t, pair("blocks.0.att.key", []int64{3, 1}, []int64{2, 1})...)
		_, err = Merge(context.Background(), source(q), []Blend{{Adapter: a, Alpha: 1}}, nil)
		if !errors.Is(err, ErrDType) || !strings.Contains(err.Error(), "before quantizing") {
			t.Errorf("got %v, want %v saying to merge before quantizing", err, ErrDType)
		}
	})
}
