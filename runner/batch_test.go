package runner

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/engine"
)

// A batch of sequences of different lengths — one of a single token, one
// longer than a pass (maxChunk rows), one starting from an advanced state —
// with mixed outputs gives every sequence the logits and the final state it
// gets alone, for all five tiny models. Alone and batched, a row is summed
// in the same order within its product but the products have other sizes
// (so other kernel paths), hence a tolerance: max |Δlogit| ≤ 1e-4, as
// between Step and Forward, and states within 1e-4 relative.
func TestBatchMatchesAlone(t *testing.T) {
	idx := readTinyIndex(t)
	for _, tm := range idx.Models {
		t.Run(tm.Version, func(t *testing.T) {
			m := loadFile(t, filepath.Join(tinyDir, tm.Pth))
			rng := rand.New(rand.NewPCG(1, uint64(len(tm.Pth))))
			toks := func(n int) []int {
				out := make([]int, n)
				for i := range out {
					out[i] = rng.IntN(m.info.Vocab)
				}
				return out
			}
			warm := toks(9) // the advanced start of one sequence
			cases := []struct {
				n      int
				out    engine.Output
				warmed bool
			}{
				{1, engine.OutputLast, false},
				{maxChunk + 88, engine.OutputAll, false},
				{37, engine.OutputNone, false},
				{5, engine.OutputAll, true},
				{1, engine.OutputAll, false},
				{14, engine.OutputLast, true},
			}
			batch := make([]engine.Sequence, len(cases))
			alone := make([]*State, len(cases))
			for i, c := range cases {
				s := m.newState()
				if c.warmed {
					if _, err := m.Forward(s, warm, false); err != nil {
						t.Fatal(err)
					}
				}
				alone[i] = s.Clone()
				batch[i] = engine.Sequence{Tokens: toks(c.n), State: s, Output: c.out}
			}
			if err := m.Run(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			V := m.info.Vocab
			for i, c := range cases {
				all, err := m.Forward(alone[i], batch[i].Tokens, true)
				if err != nil {
					t.Fatal(err)
				}
				var want []float32
				switch c.out {
				case engine.OutputAll:
					want = all
				case engine.OutputLast:
					want = all[len(all)-V:]
				}
				got := batch[i].Logits
				if len(got) != len(want) {
					t.Errorf("sequence %d (%d tokens, output %v): %d logits, want %d", i, c.n, c.out, len(got), len(want))
					continue
				}
				if d := maxAbsDiff(got, want); d > 1e-4 {
					t.Errorf("sequence %d (%d tokens, output %v): logits differ by %.3g from the sequence alone", i, c.n, c.out, d)
				}
				st := batch[i].State.(*State)
				if d := maxRelDiff(st.snap.Data, alone[i].snap.Data); d > 1e-4 {
					t.Errorf("sequence %d (%d tokens): final state differs by %.3g (relative) from the sequence alone", i, c.n, d)
				}
			}
		})
	}
}

// maxRelDiff is max |a−b| / max(1, |b|), infinite for NaN or other lengths.
func maxRelDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		if x != x || y != y {
			return math.Inf(1)
		}
		d = max(d, math.Abs(x-y)/max(1, math.Abs(y)))
	}
	return d
}

// Run reuses a sequence's Logits array when it is large enough and grows
// it otherwise.
func TestRunReusesLogits(t *testing.T) {
	m := loadFile(t, filepath.Join(tinyDir, "tiny-rwkv-6v0-1m.pth"))
	V := m.info.Vocab
	buf := make([]float32, 3*V, 4*V)
	batch := []engine.Sequence{
		{Tokens: []int{1, 2, 3}, State: m.newState(), Output: engine.OutputAll, Logits: buf},
		{Tokens: []int{4, 5}, State: m.newState(), Output: engine.OutputAll, Logits: make([]float32, 1)},
	}
	if err := m.Run(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if len(batch[0].Logits) != 3*V || &batch[0].Logits[0] != &buf[0] {
		t.Errorf("sequence 0: %d logits in a new array, want %d in the one given", len(batch[0].Logits), 3*V)
	}
	if len(batch[1].Logits) != 2*V {
		t.Errorf("sequence 1: %d logits, want %d", len(batch[1].Logits), 2*V)
	}
}

func TestRunRejectsBadBatches(t *testing.T) {
	m := loadFile(t, filepath.Join(tinyDir, "tiny-rwkv-5v2-730K.pth"))
	shared := m.newState()
	fresh := func() engine.State { return m.newState() }
	for _, c := range []struct {
		name  string
		batch []engine.Sequence
		is    error
	}{
		{"shared state", []engine.Sequence{{Tokens: []int{1}, State: shared}, {Tokens: []int{2}, State: shared}}, nil},
		{"no tokens", []engine.Sequence{{State: fresh()}}, nil},
		{"token outside the vocabulary", []engine.Sequence{{Tokens: []int{1}, State: fresh()}, {Tokens: []int{m.info.Vocab}, State: fresh()}}, ErrToken},
		{"no state", []engine.Sequence{{Tokens: []int{1}}}, ErrStateMismatch},
		{"unknown output", []engine.Sequence{{Tokens: []int{1}, State: fresh(), Output: 7}}, nil},
	} {
		before, _ := shared.Snapshot()
		err := m.Run(context.Background(), c.batch)
		if err == nil || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: %v", c.name, err)
		}
		after, _ := shared.Snapshot()
		if maxAbsDiff(before.Data, after.Data) != 0 {
			t.Errorf("%s: a rejected batch changed a state", c.name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Run(ctx, []engine.Sequence{{Tokens: []int{1}, State: fresh()}}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if err := m.Run(context.Background(), nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}
