package verify

import (
	"fmt"
	"math"
	"runtime"
	"slices"
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
// It is a [Comparer] given every row at once.
func Compare(model, ref [][]float32, tokens []int, perPosition bool) (Metrics, error) {
	if len(model) != len(tokens) || (ref != nil && len(ref) != len(model)) {
		return Metrics{Positions: len(model)}, fmt.Errorf("compare: %d model rows, %d reference rows, %d tokens", len(model), len(ref), len(tokens))
	}
	c := NewComparer(tokens, ref != nil, perPosition)
	if err := c.Add(model, ref); err != nil {
		return Metrics{Positions: len(model)}, err
	}
	return c.Metrics()
}

// A Comparer computes the Metrics of a model against a reference from
// their rows given a few positions at a time, in order, so that neither
// model's logits need be held whole: memory follows the rows of one Add.
// Rows are scored on every core (4,096 rows of 65,536 logits take three
// exponentials per logit: seconds on one core) and summed in position
// order, so the result depends neither on the number of cores nor on how
// the positions are shared out among calls of Add.
type Comparer struct {
	tokens      []int
	withRef     bool
	perPosition bool
	next, vocab int

	scores              []rowScore // of one Add
	beside              []float32  // AddBeside's rows from its file
	nll, refNLL, sq     float64
	top1, scored, cells int
	m                   Metrics
}

// NewComparer returns a Comparer for the rows after each of tokens; withRef
// false computes the perplexity only.
func NewComparer(tokens []int, withRef, perPosition bool) *Comparer {
	return &Comparer{tokens: tokens, withRef: withRef, perPosition: perPosition}
}

// Add scores the next len(model) positions: the model's rows and the
// reference's (nil without one), one row per position.
func (c *Comparer) Add(model, ref [][]float32) error {
	if c.next+len(model) > len(c.tokens) {
		return fmt.Errorf("compare: %d rows past position %d of %d tokens", len(model), c.next, len(c.tokens))
	}
	if c.withRef != (ref != nil) || (ref != nil && len(ref) != len(model)) {
		return fmt.Errorf("compare: %d model rows, %d reference rows", len(model), len(ref))
	}
	for i, row := range model {
		t := c.next + i
		if t == 0 {
			c.vocab = len(row)
		}
		if len(row) != c.vocab {
			return fmt.Errorf("compare: position %d: vocabulary %d, position 0 had %d", t, len(row), c.vocab)
		}
		if t+1 < len(c.tokens) {
			if next := c.tokens[t+1]; next < 0 || next >= len(row) {
				return fmt.Errorf("compare: token %d at position %d is outside the vocabulary of %d", next, t+1, len(row))
			}
		}
		if ref != nil && len(ref[i]) != len(row) {
			return fmt.Errorf("compare: position %d: vocabulary %d vs reference %d", t, len(row), len(ref[i]))
		}
	}
	c.scores = slices.Grow(c.scores[:0], len(model))[:len(model)] // every one set below
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(model))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lpm, lpr []float64
			for i := w; i < len(model); i += workers {
				var r []float32
				if ref != nil {
					r = ref[i]
				}
				next := -1
				if t := c.next + i; t+1 < len(c.tokens) {
					next = c.tokens[t+1]
				}
				c.scores[i], lpm, lpr = scoreRow(model[i], r, next, lpm, lpr)
			}
		}()
	}
	wg.Wait()
	for i, sc := range c.scores {
		if c.next+i+1 < len(c.tokens) {
			c.nll += sc.nll
			c.refNLL += sc.refNLL
			c.scored++
		}
		if ref == nil {
			continue
		}
		c.sq += sc.sq
		c.cells += len(model[i])
		if sc.top1Model == sc.top1Ref {
			c.top1++
		}
		c.m.MeanKL += sc.kl
		c.m.MaxKL = max(c.m.MaxKL, sc.kl)
		c.m.MaxAbsDiff = max(c.m.MaxAbsDiff, sc.maxd)
		if c.perPosition {
			c.m.PerPosition = append(c.m.PerPosition, PositionMetrics{KL: sc.kl, Top1Model: sc.top1Model, Top1Ref: sc.top1Ref, MaxAbsDiff: sc.maxd})
		}
	}
	c.next += len(model)
	return nil
}

// Metrics returns the metrics of every position, once Add has been given
// them all.
func (c *Comparer) Metrics() (Metrics, error) {
	m := c.m
	m.Positions = len(c.tokens)
	if c.next != len(c.tokens) {
		return m, fmt.Errorf("compare: rows of %d of %d positions", c.next, len(c.tokens))
	}
	if c.scored > 0 {
		m.Perplexity = math.Exp(c.nll / float64(c.scored))
		if c.withRef {
			m.RefPerplexity = math.Exp(c.refNLL / float64(c.scored))
		}
	}
	if c.withRef && c.next > 0 {
		m.MeanKL /= float64(c.next)
		m.Top1Percent = 100 * float64(c.top1) / float64(c.next)
		m.RMSDiff = math.Sqrt(c.sq / float64(c.cells))
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
