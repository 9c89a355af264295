package verify

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Metrics compares the logits of a model with those of a reference on the
// same tokens, the way llama.cpp's perplexity tool reports quantization
// quality: perplexity of each on the text, KL divergence (reference ‖ model),
// top-1 agreement and the size of the logit differences.
type Metrics struct {
	Positions     int               `json:"positions"`
	Perplexity    float64           `json:"perplexity"`               // of the model, over positions with a next token
	RefPerplexity float64           `json:"ref_perplexity,omitempty"` // of the reference, likewise
	MeanKL        float64           `json:"mean_kl"`
	MaxKL         float64           `json:"max_kl"`
	Top1Percent   float64           `json:"top1_agreement_percent"` // percent of positions whose argmax agrees
	MaxAbsDiff    float64           `json:"max_abs_dlogit"`
	RMSDiff       float64           `json:"rms_dlogit"`
	PerPosition   []PositionMetrics `json:"per_position,omitempty"`
}

// PositionMetrics is one position's share of Metrics.
type PositionMetrics struct {
	KL         float64 `json:"kl"`
	Top1Model  int     `json:"top1_model"`
	Top1Ref    int     `json:"top1_ref"`
	MaxAbsDiff float64 `json:"max_abs_dlogit"`
}

// Compare computes Metrics for logits of shape [len(tokens)][vocab]: row t
// is the prediction after tokens[0..t], so row t is scored against
// tokens[t+1]. ref may be nil, in which case only the perplexity is computed.
//
// Rows are scored on every core (4,096 rows of 65,536 logits take three
// exponentials per logit: seconds on one core) and summed in row order, so
// the result does not depend on the number of cores.
func Compare(model, ref [][]float32, tokens []int, perPosition bool) (Metrics, error) {
	m := Metrics{Positions: len(model)}
	if len(model) != len(tokens) || (ref != nil && len(ref) != len(model)) {
		return m, fmt.Errorf("compare: %d model rows, %d reference rows, %d tokens", len(model), len(ref), len(tokens))
	}
	for t, row := range model {
		if t+1 < len(tokens) {
			if next := tokens[t+1]; next < 0 || next >= len(row) {
				return m, fmt.Errorf("compare: token %d at position %d is outside the vocabulary of %d", next, t+1, len(row))
			}
		}
		if ref != nil && len(ref[t]) != len(row) {
			return m, fmt.Errorf("compare: position %d: vocabulary %d vs reference %d", t, len(row), len(ref[t]))
		}
	}
	scores := make([]rowScore, len(model))
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(model))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lpm, lpr []float64
			for t := w; t < len(model); t += workers {
				var r []float32
				if ref != nil {
					r = ref[t]
				}
				next := -1
				if t+1 < len(tokens) {
					next = tokens[t+1]
				}
				scores[t], lpm, lpr = scoreRow(model[t], r, next, lpm, lpr)
			}
		}()
	}
	wg.Wait()
	var nll, refNLL, sq float64
	var top1, scored, cells int
	for t, sc := range scores {
		if t+1 < len(tokens) {
			nll += sc.nll
			refNLL += sc.refNLL
			scored++
		}
		if ref == nil {
			continue
		}
		sq += sc.sq
		cells += len(model[t])
		if sc.top1Model == sc.top1Ref {
			top1++
		}
		m.MeanKL += sc.kl
		m.MaxKL = max(m.MaxKL, sc.kl)
		m.MaxAbsDiff = max(m.MaxAbsDiff, sc.maxd)
		if perPosition {
			m.PerPosition = append(m.PerPosition, PositionMetrics{KL: sc.kl, Top1Model: sc.top1Model, Top1Ref: sc.top1Ref, MaxAbsDiff: sc.maxd})
		}
	}
	if scored > 0 {
		m.Perplexity = math.Exp(nll / float64(scored))
		if ref != nil {
			m.RefPerplexity = math.Exp(refNLL / float64(scored))
		}
	}
	if ref != nil && len(model) > 0 {
		m.MeanKL /= float64(len(model))
		m.Top1Percent = 100 * float64(top1) / float64(len(model))
		m.RMSDiff = math.Sqrt(sq / float64(cells))
	}
	return m, nil
}

// A rowScore is one position's terms of Metrics.
type rowScore struct {
	nll, refNLL        float64 // −log p of the next token (0 at the last position)
	kl, maxd, sq       float64
	top1Model, top1Ref int
}

// scoreRow scores the logits row of the model against ref's (nil: none)
// for the next token (−1: none), with lpm and lpr as scratch space.
func scoreRow(row, ref []float32, next int, lpm, lpr []float64) (rowScore, []float64, []float64) {
	var sc rowScore
	lpm = logSoftmax(lpm, row)
	if next >= 0 {
		sc.nll = -lpm[next]
	}
	if ref == nil {
		return sc, lpm, lpr
	}
	lpr = logSoftmax(lpr, ref)
	if next >= 0 {
		sc.refNLL = -lpr[next]
	}
	for i, lr := range lpr {
		sc.kl += math.Exp(lr) * (lr - lpm[i])
		d := math.Abs(float64(row[i]) - float64(ref[i]))
		sc.maxd = max(sc.maxd, d)
		sc.sq += d * d
	}
	sc.kl = max(sc.kl, 0) // rounding can make an exact match come out at −1e-17
	sc.top1Model, sc.top1Ref = argmax(row), argmax(ref)
	return sc, lpm, lpr
}

// logSoftmax writes the log-probabilities of logits into dst (reused when
// large enough), in float64 so that tiny KL values are not lost.
func logSoftmax(dst []float64, logits []float32) []float64 {
	if cap(dst) < len(logits) {
		dst = make([]float64, len(logits))
	}
	dst = dst[:len(logits)]
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = max(mx, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	lse := mx + math.Log(sum)
	for i, v := range logits {
		dst[i] = float64(v) - lse
	}
	return dst
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
