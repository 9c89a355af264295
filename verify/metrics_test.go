package verify

import (
	"math"
	"reflect"
	"runtime"
	"testing"
)

func TestCompareIdentical(t *testing.T) {
	rows := [][]float32{{1, 2, 3, 0}, {0.5, -1, 2, 2.5}, {3, 1, 0, -2}}
	m, err := Compare(rows, rows, []int{0, 2, 3}, true)
	if err != nil {
		t.Fatal(err)
	}
	if m.MeanKL != 0 || m.MaxKL != 0 || m.Top1Percent != 100 || m.MaxAbsDiff != 0 || m.RMSDiff != 0 {
		t.Errorf("self-comparison not exact: %+v", m)
	}
	if m.Perplexity != m.RefPerplexity {
		t.Errorf("perplexities differ: %v vs %v", m.Perplexity, m.RefPerplexity)
	}
}

// Hand-computed: row 0 predicts token 1 with p = e^2/(1+e^2+1) and row 1
// predicts token 0 with p = 1/2; perplexity = exp(−(log p0 + log p1)/2).
func TestComparePerplexityAndKL(t *testing.T) {
	model := [][]float32{{0, 2, 0}, {0, 0, -1000}, {0, 0, 0}}
	tokens := []int{2, 1, 0}
	p0 := math.Exp(2) / (2 + math.Exp(2))
	p1 := 0.5
	want := math.Exp(-(math.Log(p0) + math.Log(p1)) / 2)
	m, err := Compare(model, nil, tokens, false)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.Perplexity-want) > 1e-12 {
		t.Errorf("perplexity %v, want %v", m.Perplexity, want)
	}
	// KL(ref ‖ model) for ref = uniform over 2, model = (0.9, 0.1) is
	// 0.5·ln(0.5/0.9) + 0.5·ln(0.5/0.1).
	ref := [][]float32{{0, 0}}
	mod := [][]float32{{float32(math.Log(0.9)), float32(math.Log(0.1))}}
	m, err = Compare(mod, ref, []int{0}, false)
	if err != nil {
		t.Fatal(err)
	}
	wantKL := 0.5*math.Log(0.5/0.9) + 0.5*math.Log(0.5/0.1)
	if math.Abs(m.MeanKL-wantKL) > 1e-6 || m.Top1Percent != 100 {
		t.Errorf("KL %v, want %v", m.MeanKL, wantKL)
	}
}

func TestCompareMovesWithPerturbation(t *testing.T) {
	ref := [][]float32{{1, 2, 3, 4}, {4, 3, 2, 1}}
	small := [][]float32{{1.1, 2, 3, 4}, {4, 3, 2, 1.1}}
	big := [][]float32{{4, 2, 3, 1}, {1, 3, 2, 4}}
	ms, _ := Compare(small, ref, []int{0, 1}, false)
	mb, _ := Compare(big, ref, []int{0, 1}, false)
	if !(0 < ms.MeanKL && ms.MeanKL < mb.MeanKL) || ms.Top1Percent != 100 || mb.Top1Percent != 0 || ms.MaxAbsDiff >= mb.MaxAbsDiff {
		t.Errorf("metrics do not grow with the perturbation: small %+v, big %+v", ms, mb)
	}
}

func TestCompareRejectsMismatch(t *testing.T) {
	if _, err := Compare([][]float32{{1}}, nil, []int{0, 1}, false); err == nil {
		t.Error("row/token count mismatch accepted")
	}
	if _, err := Compare([][]float32{{1}, {1}}, nil, []int{0, 7}, false); err == nil {
		t.Error("token outside the vocabulary accepted")
	}
}

// testRows makes T rows of V logits of a model and of a reference that
// differ a little everywhere, and tokens spread over the vocabulary.
func testRows(T, V, k, step int) (model, ref [][]float32, tokens []int) {
	model, ref, tokens = make([][]float32, T), make([][]float32, T), make([]int, T)
	for i := range model {
		model[i], ref[i] = make([]float32, V), make([]float32, V)
		for j := range V {
			model[i][j] = float32(math.Sin(float64(i*V+j))) * 4
			ref[i][j] = model[i][j] + float32(math.Cos(float64(k*i+j)))/8
		}
		tokens[i] = (i * step) % V
	}
	return model, ref, tokens
}

// The metrics do not depend on how many cores score the rows.
func TestCompareSameOnAnyCores(t *testing.T) {
	const T, V = 37, 1000
	model, ref, tokens := testRows(T, V, 3, 7919)
	var want Metrics
	for _, procs := range []int{1, 2, 3, 8} {
		old := runtime.GOMAXPROCS(procs)
		m, err := Compare(model, ref, tokens, true)
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		if procs == 1 {
			want = m
			if m.MeanKL <= 0 || m.Top1Percent <= 0 || m.Top1Percent >= 100 || len(m.PerPosition) != T {
				t.Fatalf("degenerate metrics %+v", m)
			}
			continue
		}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("on %d cores: %+v, on one: %+v", procs, m, want)
		}
	}
}

// A Comparer given the rows a few positions at a time gives Compare's
// metrics exactly, however the positions are shared out; it refuses rows
// past the tokens, a changed vocabulary and metrics before every position.
func TestComparerInChunks(t *testing.T) {
	const T, V = 29, 300
	model, ref, tokens := testRows(T, V, 5, 131)
	for _, withRef := range []bool{false, true} {
		r := ref
		if !withRef {
			r = nil
		}
		want, err := Compare(model, r, tokens, true)
		if err != nil {
			t.Fatal(err)
		}
		if want.Perplexity <= 1 || withRef && (want.MeanKL <= 0 || len(want.PerPosition) != T) {
			t.Fatalf("degenerate metrics %+v", want)
		}
		for _, chunk := range []int{1, 4, 7, T} {
			c := NewComparer(tokens, withRef, true)
			for s := 0; s < T; s += chunk {
				e := min(s+chunk, T)
				var rc [][]float32
				if withRef {
					rc = ref[s:e]
				}
				if err := c.Add(model[s:e], rc); err != nil {
					t.Fatal(err)
				}
			}
			got, err := c.Metrics()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("reference %v, chunks of %d: %+v, at once %+v", withRef, chunk, got, want)
			}
		}
	}
	c := NewComparer(tokens, true, false)
	if err := c.Add(model[:3], ref[:3]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Metrics(); err == nil {
		t.Error("metrics of 3 of 29 positions: no error")
	}
	if err := c.Add(model[3:], ref[3:4]); err == nil {
		t.Error("26 model rows and 1 reference row: no error")
	}
	if err := c.Add([][]float32{make([]float32, V+1)}, [][]float32{make([]float32, V+1)}); err == nil {
		t.Error("a row of another vocabulary: no error")
	}
	if err := c.Add(model[3:], nil); err == nil {
		t.Error("no reference rows for a comparer with a reference: no error")
	}
	if err := c.Add(append(model[3:], model[0]), append(ref[3:], ref[0])); err == nil {
		t.Error("rows past the last token: no error")
	}
}
