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

// The metrics do not depend on how many cores score the rows.
func TestCompareSameOnAnyCores(t *testing.T) {
	const T, V = 37, 1000
	model, ref := make([][]float32, T), make([][]float32, T)
	tokens := make([]int, T)
	for i := range model {
		model[i], ref[i] = make([]float32, V), make([]float32, V)
		for j := range V {
			model[i][j] = float32(math.Sin(float64(i*V+j))) * 4
			ref[i][j] = model[i][j] + float32(math.Cos(float64(3*i+j)))/8
		}
		tokens[i] = (i * 7919) % V
	}
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
