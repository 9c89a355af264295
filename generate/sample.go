package generate

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
)

// A Sampler picks tokens from logits. Temperature ≤ 0 picks the most likely
// token (the lowest id on ties); otherwise the logits are divided by the
// temperature and, when 0 < TopP < 1, only the most likely tokens whose
// probabilities first reach TopP in total are kept (nucleus sampling).
// A Sampler with a given Seed makes the same choices for the same logits;
// its generator starts at the first Sample call.
type Sampler struct {
	Temperature float32
	TopP        float32
	Seed        uint64

	rng   *rand.Rand
	probs []float64
	idx   probHeap
}

// Check reports, naming the range, a setting outside it: Temperature must
// be finite and at least 0 (0 takes the most likely token), TopP in (0, 1]
// (1 keeps every token). Sample itself accepts any values (a temperature
// that is not positive means greedy; a TopP outside (0, 1) keeps every
// token); Check is for values a user gave.
func (s *Sampler) Check() error {
	t, p := float64(s.Temperature), float64(s.TopP)
	if math.IsNaN(t) || math.IsInf(t, 0) || t < 0 {
		return fmt.Errorf("temperature %v: want a finite value of 0 (always the most likely token) or more", s.Temperature)
	}
	if math.IsNaN(p) || p <= 0 || p > 1 {
		return fmt.Errorf("top-p %v: want a value in (0, 1] (1 keeps every token)", s.TopP)
	}
	return nil
}

// Sample returns a token id; it returns −1 only for empty logits.
func (s *Sampler) Sample(logits []float32) int {
	if len(logits) == 0 {
		return -1
	}
	if s.Temperature <= 0 || math.IsNaN(float64(s.Temperature)) {
		return argmaxFirst(logits)
	}
	if s.rng == nil {
		s.rng = rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	}
	best := argmaxFirst(logits)
	top := float64(logits[best])
	inv := 1 / float64(s.Temperature)
	if cap(s.probs) < len(logits) {
		s.probs = make([]float64, len(logits))
	}
	p := s.probs[:len(logits)]
	var total float64
	for i, l := range logits {
		v := math.Exp((float64(l) - top) * inv)
		if math.IsNaN(v) {
			v = 0
		}
		p[i] = v
		total += v
	}
	u := s.rng.Float64()
	if s.TopP > 0 && s.TopP < 1 {
		// Pop tokens in order of probability until they hold TopP of the mass.
		s.idx = s.idx[:0]
		for i := range p {
			s.idx = append(s.idx, i)
		}
		h := &probHeapOf{s.idx, p}
		heap.Init(h)
		var kept []int
		var mass float64
		for h.Len() > 0 && mass < float64(s.TopP)*total {
			i := heap.Pop(h).(int)
			kept = append(kept, i)
			mass += p[i]
		}
		target := u * mass
		for _, i := range kept {
			target -= p[i]
			if target < 0 {
				return i
			}
		}
		return kept[len(kept)-1]
	}
	target := u * total
	for i, v := range p {
		target -= v
		if target < 0 {
			return i
		}
	}
	return best
}

func argmaxFirst(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] || (v[best] != v[best] && x == x) {
			best = i
		}
	}
	return best
}

type probHeap []int

// probHeapOf is a max-heap of token ids by probability (lower id first on ties).
type probHeapOf struct {
	ids probHeap
	p   []float64
}

func (h *probHeapOf) Len() int { return len(h.ids) }
func (h *probHeapOf) Less(i, j int) bool {
	a, b := h.ids[i], h.ids[j]
	return h.p[a] > h.p[b] || (h.p[a] == h.p[b] && a < b)
}
func (h *probHeapOf) Swap(i, j int) { h.ids[i], h.ids[j] = h.ids[j], h.ids[i] }
func (h *probHeapOf) Push(x any)    { h.ids = append(h.ids, x.(int)) }
func (h *probHeapOf) Pop() any {
	n := len(h.ids) - 1
	x := h.ids[n]
	h.ids = h.ids[:n]
	return x
}
