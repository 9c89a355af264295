package generate

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestSampler(t *testing.T) {
	logits := []float32{0.5, 2, 1.9, -1, 1.95, 0}
	draw := func(s Sampler, n int) []int {
		var out []int
		for range n {
			out = append(out, s.Sample(logits))
		}
		return out
	}
	t.Run("same seed, same tokens", func(t *testing.T) {
		a := draw(Sampler{Temperature: 1, TopP: 0.9, Seed: 7}, 200)
		b := draw(Sampler{Temperature: 1, TopP: 0.9, Seed: 7}, 200)
		c := draw(Sampler{Temperature: 1, TopP: 0.9, Seed: 8}, 200)
		if !slices.Equal(a, b) {
			t.Error("same seed gave different tokens")
		}
		if slices.Equal(a, c) {
			t.Error("different seeds gave the same 200 tokens")
		}
	})
	t.Run("temperature 0 is argmax", func(t *testing.T) {
		for _, tok := range draw(Sampler{Temperature: 0, Seed: 1}, 20) {
			if tok != 1 {
				t.Fatalf("got token %d, want 1", tok)
			}
		}
	})
	t.Run("small top-p keeps the top token", func(t *testing.T) {
		for _, tok := range draw(Sampler{Temperature: 1, TopP: 0.01, Seed: 3}, 200) {
			if tok != 1 {
				t.Fatalf("got token %d, want 1", tok)
			}
		}
	})
	t.Run("top-p keeps the nucleus", func(t *testing.T) {
		// Softmax of the logits: 0.0684, 0.3063, 0.2772, 0.0153, 0.2914,
		// 0.0415. The top three hold 0.875 < 0.9, the top four 0.943, so
		// tokens 3 and 5 never appear; within the nucleus token 0 has
		// probability 0.0725, about 290 of 4000 draws (σ ≈ 16).
		seen := map[int]int{}
		for _, tok := range draw(Sampler{Temperature: 1, TopP: 0.9, Seed: 5}, 4000) {
			seen[tok]++
		}
		for _, tok := range []int{3, 5} {
			if seen[tok] != 0 {
				t.Errorf("token %d drawn %d times outside the nucleus", tok, seen[tok])
			}
		}
		for tok, low := range map[int]int{0: 200, 1: 1100, 2: 1000, 4: 1050} {
			if seen[tok] < low { // expected 290, 1299, 1176, 1236
				t.Errorf("token %d drawn %d times of 4000, want at least %d", tok, seen[tok], low)
			}
		}
	})
	t.Run("frequencies follow the distribution", func(t *testing.T) {
		// Temperature 1, no top-p: token 1 has probability 0.3063; 20000
		// draws give 6126 ± 3σ (σ ≈ 65).
		n := 0
		for _, tok := range draw(Sampler{Temperature: 1, Seed: 11}, 20000) {
			if tok == 1 {
				n++
			}
		}
		if n < 5930 || n > 6320 {
			t.Errorf("token 1 drawn %d times of 20000, want 6126 ± 195", n)
		}
	})
}

func TestSamplerCheck(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		temp, topP float32
		want       string // in the error; "" for valid
	}{
		{0, 1, ""}, {1, 0.85, ""}, {2.5, 1e-3, ""},
		{-1, 0.85, "temperature -1: want a finite value of 0"},
		{nan, 0.85, "temperature NaN"},
		{inf, 0.85, "temperature +Inf"},
		{1, 0, "top-p 0: want a value in (0, 1]"},
		{1, -1, "top-p -1"},
		{1, 1.5, "top-p 1.5"},
		{1, nan, "top-p NaN"},
	} {
		err := (&Sampler{Temperature: c.temp, TopP: c.topP}).Check()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("temperature %v, top-p %v: %v, want %q", c.temp, c.topP, err, c.want)
		}
	}
}
