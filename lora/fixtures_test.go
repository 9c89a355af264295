package lora

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	_ "github.com/rwkvkit/rwkvkit/pth"
	_ "github.com/rwkvkit/rwkvkit/safetensors"
)

const tiny = "../fixtures/rwkv-tiny/"

func openModel(t *testing.T, path string) *format.Source {
	t.Helper()
	src, err := format.Open(tiny + path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// ulp is the spacing of dt's values at |x|: float16 has 11 significant bits
// down to 2⁻¹⁴ (subnormals below, spaced 2⁻²⁴), bfloat16 has 8.
func ulp(x float64, dt format.DType) float64 {
	_, e := math.Frexp(math.Abs(x)) // |x| in [2^(e−1), 2^e)
	switch dt {
	case format.F16:
		return math.Ldexp(1, max(e-1, -14)-10)
	case format.BF16:
		return math.Ldexp(1, max(e-1, -126)-7)
	}
	return math.Ldexp(1, max(e-1, -126)-23)
}

// TestFullRankDifference turns the tiny RWKV-5.0 model into the tiny
// RWKV-5.2 one (web-rwkv's .st files, float16) with a full-rank adapter:
// for every matrix W1 [out, in] of the first that the second has with the
// same shape, A = I [in, in] and B = W2 − W1 (float32), merged with alpha =
// rank, so that W1 + B·Aᵀ = W2; every vector is replaced by the second's
// (alpha 1). Where W2 − W1 is exact in float32 the result is W2's bytes; it
// may be one float16 ulp off where the two weights' exponents are too far
// apart for the difference to be exact. Tensors the adapter does not touch
// (emb.weight, the decay of another shape) keep the first model's bytes.
func TestFullRankDifference(t *testing.T) {
	m1 := openModel(t, "st/tiny-rwkv-5v1-730K.st")
	m2 := openModel(t, "st/tiny-rwkv-5v2-730K.st")
	var ts []*format.Tensor
	var patterns []Pattern
	var want []string
	for _, t1 := range m1.Tensors {
		t2 := m2.Lookup(t1.Name)
		if t2 == nil || !slices.Equal(t1.Shape, t2.Shape) || t1.Name == "emb.weight" {
			continue
		}
		want = append(want, t1.Name)
		if !isMatrix(t1.Name, t1.Shape) {
			ts = append(ts, t2)
			continue
		}
		out, in := t1.Shape[0], t1.Shape[1]
		w1, w2 := values(t, m1, t1.Name), values(t, m2, t1.Name)
		diff := make([]float32, len(w1))
		for i := range diff {
			diff[i] = float32(float64(w2[i]) - float64(w1[i]))
		}
		eye := make([]float32, in*in)
		for i := int64(0); i < in; i++ {
			eye[i*in+i] = 1
		}
		module := strings.TrimSuffix(t1.Name, ".weight")
		ts = append(ts,
			tensor(t, module+".lora.0", F32, []int64{in, in}, eye),
			tensor(t, module+".lora.1", F32, []int64{out, in}, diff))
		patterns = append(patterns, pattern(t, `^`+strings.ReplaceAll(t1.Name, ".", `\.`)+`$`, float32(in)))
	}
	a := mustOpen(t, ts...)
	merged := mustMerge(t, m1, Blend{Adapter: a, Alpha: 1, Patterns: patterns})
	exact, offByOne := 0, 0
	for _, name := range want {
		got, w2 := f16bits(t, merged, name), f16bits(t, m2, name)
		for i := range got {
			switch d := int(got[i]) - int(w2[i]); {
			case d == 0:
				exact++
			case (d == 1 || d == -1) && got[i]&0x8000 == w2[i]&0x8000:
				offByOne++
			default:
				t.Fatalf("%s[%d] = %#04x, want %#04x (within one ulp)", name, i, got[i], w2[i])
			}
		}
	}
	t.Logf("%d tensors, %d values equal, %d one float16 ulp off", len(want), exact, offByOne)
	if exact < 100_000 {
		t.Errorf("only %d values compared", exact)
	}
	for i, t1 := range m1.Tensors {
		if !slices.Contains(want, t1.Name) && merged.Tensors[i] != t1 {
			t.Errorf("%s: untouched but not passed through", t1.Name)
		}
	}
}

// TestRealLayouts merges one adapter (web-rwkv names) into the tiny RWKV-6
// both as its RWKV-LM checkpoint (.pth, bfloat16, time_maa_w1 [C, 5D],
// square time_decay_w1 stored transposed) and as web-rwkv's conversion
// (.st, float16). Each result, seen in web-rwkv's layout, is compared with
// the update computed here in float64 from that base's own values: within
// one ulp of the base's dtype (the value is rounded once, from a float32
// result whose own error is far below that ulp).
func TestRealLayouts(t *testing.T) {
	const r = 4
	rng := rand.New(rand.NewPCG(9, 10))
	small := func(n int) []float32 {
		v := randVals(rng, n, F32)
		for i := range v {
			v[i] /= 4
		}
		return v
	}
	type upd struct {
		name    string // web-rwkv name of the base tensor
		a, b, l []float32
	}
	const C = 64
	updates := []upd{
		{name: "blocks.2.att.key.weight", a: small(C * r), b: small(C * r)},
		{name: "blocks.2.att.time_mix_w1", a: small(C * r), b: small(160 * r)},
		{name: "blocks.2.att.time_decay_w1", a: small(C * r), b: small(C * r)},
		{name: "blocks.2.att.time_mix_w2", l: small(5 * C * 32)},
		{name: "blocks.2.att.time_decay_w2", l: small(C * C)},
		{name: "blocks.2.att.time_mix_k", l: small(C)},
	}
	var ts []*format.Tensor
	for _, u := range updates {
		if u.l != nil {
			shape := map[int][]int64{C: {1, 1, C}, C * C: {C, C}, 5 * C * 32: {5, C, 32}}[len(u.l)]
			ts = append(ts, tensor(t, u.name, F32, shape, u.l))
			continue
		}
		m := strings.TrimSuffix(u.name, ".weight")
		ts = append(ts,
			tensor(t, m+".lora.0", F32, []int64{C, r}, u.a),
			tensor(t, m+".lora.1", F32, []int64{int64(len(u.b) / r), r}, u.b))
	}
	a := mustOpen(t, ts...)
	blend := Blend{Adapter: a, Alpha: 1.5, Patterns: []Pattern{pattern(t, `time_mix_k$`, 0.25)}}

	for _, file := range []string{"tiny-rwkv-6v0-1m.pth", "st/tiny-rwkv-6v0-1m.st"} {
		t.Run(file, func(t *testing.T) {
			base := openModel(t, file)
			merged := mustMerge(t, base, blend)
			webBase, err := format.WebRWKV(base)
			if err != nil {
				t.Fatal(err)
			}
			webMerged, err := format.WebRWKV(merged)
			if err != nil {
				t.Fatal(err)
			}
			dt := base.Tensors[0].DType
			for _, u := range updates {
				w := f64s(values(t, webBase, u.name))
				alpha := float64(blend.AlphaFor(u.name))
				want := slices.Clone(w)
				switch {
				case u.a != nil:
					out, in := len(u.b)/r, len(u.a)/r
					for o := 0; o < out; o++ {
						for i := 0; i < in; i++ {
							for k := 0; k < r; k++ {
								want[o*in+i] += alpha / r * float64(u.b[o*r+k]) * float64(u.a[i*r+k])
							}
						}
					}
				case len(u.l) == C: // a vector
					for i := range want {
						want[i] = alpha*float64(u.l[i]) + (1-alpha)*w[i]
					}
				default:
					for i := range want {
						want[i] += alpha * float64(u.l[i])
					}
				}
				got := values(t, webMerged, u.name)
				bad := 0
				for i := range got {
					if d := math.Abs(float64(got[i]) - want[i]); d > ulp(want[i], dt) {
						if bad++; bad <= 3 {
							t.Errorf("%s[%d] = %g, want %g (off by %g > one %v ulp)", u.name, i, got[i], want[i], d, dt)
						}
					}
				}
				if slices.Equal(f64s(got), w) {
					t.Errorf("%s: unchanged", u.name)
				}
			}
			changed := 0
			for i, bt := range base.Tensors {
				if merged.Tensors[i] != bt {
					changed++
				}
			}
			if changed != len(updates) {
				t.Errorf("%d tensors changed, want %d", changed, len(updates))
			}
		})
	}
}

// TestRealAdapterErrors checks the refusals against a real model: an
// adapter for a 7-layer-deeper block, and one shaped for another model.
func TestRealAdapterErrors(t *testing.T) {
	base := openModel(t, "st/tiny-rwkv-7v0-834K.st")
	for _, c := range []struct {
		module string
		in     int64
		want   error
	}{
		{"blocks.19.att.key", 64, ErrNoTarget},
		{"blocks.3.ffn.key", 128, ErrShape},
		{"blocks.3.att.w1", 64, ErrShape}, // w1 is [64, 64]: B has 65 rows
	} {
		out := int64(64)
		if c.module == "blocks.3.att.w1" {
			out = 65
		}
		a := mustOpen(t,
			tensor(t, c.module+".lora.0", F16, []int64{c.in, 2}, make([]float32, c.in*2)),
			tensor(t, c.module+".lora.1", F16, []int64{out, 2}, make([]float32, out*2)))
		_, err := Merge(context.Background(), base, []Blend{{Adapter: a, Alpha: 1}}, nil)
		if err == nil || !strings.Contains(err.Error(), c.module+".lora.0") {
			t.Errorf("%s: got %v, want an error naming the tensor", c.module, err)
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.module, err, c.want)
		}
	}
}
