package runner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

// Feeding [a, b] and then [c] from a clone or from a saved and restored
// state gives exactly the logits of feeding [a, b, c] the same way.
func TestStateCloneAndRestore(t *testing.T) {
	idx := readTinyIndex(t)
	for _, tm := range idx.Models {
		t.Run(tm.Version, func(t *testing.T) {
			m := loadFile(t, filepath.Join(tinyDir, tm.Pth))
			toks := idx.Tokens
			for _, useStep := range []bool{true, false} {
				feed := func(s *State, toks []int) []float32 {
					t.Helper()
					var l []float32
					var err error
					if useStep {
						for _, tok := range toks {
							if l, err = m.Step(s, tok); err != nil {
								t.Fatal(err)
							}
						}
					} else if l, err = m.Forward(s, toks, false); err != nil {
						t.Fatal(err)
					}
					return l
				}
				ref := m.newState()
				feed(ref, toks[:2])
				want := feed(ref, toks[2:])

				s := m.newState()
				feed(s, toks[:2])
				clone := s.Clone()
				saved, err := s.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				feed(s, []int{0}) // the original moves on; the copies must not notice
				if got := feed(clone, toks[2:]); !slices.Equal(got, want) {
					t.Errorf("step=%v: clone: max |diff| %g", useStep, maxAbsDiff(got, want))
				}
				restored := m.newState()
				if err := restored.Restore(saved); err != nil {
					t.Fatal(err)
				}
				if got := feed(restored, toks[2:]); !slices.Equal(got, want) {
					t.Errorf("step=%v: restored: max |diff| %g", useStep, maxAbsDiff(got, want))
				}
				// The state matters: [c] alone predicts differently.
				if fresh := feed(m.newState(), toks[2:]); maxAbsDiff(fresh, want) < 1e-3 {
					t.Errorf("step=%v: logits of [c] from a fresh state equal those after [a, b]", useStep)
				}
			}
		})
	}
}

func TestStateMismatch(t *testing.T) {
	v4 := loadFile(t, filepath.Join(tinyDir, "tiny-rwkv-4v0-660K.pth"))
	v7 := loadFile(t, filepath.Join(tinyDir, "tiny-rwkv-7v0-834K.pth"))
	if _, err := v7.Step(v4.newState(), 1); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("v7 model with a v4 state: %v, want ErrStateMismatch", err)
	}
	saved, _ := v4.newState().Snapshot()
	if err := v7.newState().Restore(saved); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("v4 snapshot into a v7 state: %v, want ErrStateMismatch", err)
	}
	cut := saved.Clone()
	cut.Data = cut.Data[:len(cut.Data)-1]
	if err := v4.newState().Restore(cut); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("short snapshot: %v, want ErrStateMismatch", err)
	}
	if _, err := v4.Step(foreignState{}, 1); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("another engine's state: %v, want ErrStateMismatch", err)
	}
}

// foreignState is a state of some other engine.
type foreignState struct{}

func (foreignState) Snapshot() (*engine.Snapshot, error) { return nil, nil }
func (foreignState) Restore(*engine.Snapshot) error      { return nil }

// One Model serves several goroutines at once, each with its own State,
// and each gets exactly what it gets alone (every output element is summed
// in one fixed order, whatever the scheduling). The model is a synthetic
// RWKV-7 large enough for its products to run on several cores.
func TestConcurrentUse(t *testing.T) {
	cfg := synth.Config{Layers: 2, Embed: 256, Vocab: 1024, HeadSize: 64, DecayLoRA: 32, ALoRA: 32, VLoRA: 32, GLoRA: 64}
	src, err := synth.RWKV7(cfg, format.F16, 7)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	toks := []int{34, 105, 110, 32, 116, 104, 101, 32, 99, 97, 116}
	run := func(step bool) ([]float32, error) {
		s := m.newState()
		if !step {
			return m.Forward(s, toks, true)
		}
		var all []float32
		for _, tok := range toks {
			l, err := m.Step(s, tok)
			if err != nil {
				return nil, err
			}
			all = append(all, l...)
		}
		return all, nil
	}
	wantFwd, err := run(false)
	if err != nil {
		t.Fatal(err)
	}
	wantStep, err := run(true)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 6)
	for g := range 6 {
		go func() {
			step := g%2 == 1
			got, err := run(step)
			want := wantFwd
			if step {
				want = wantStep
			}
			if err == nil && !slices.Equal(got, want) {
				err = fmt.Errorf("goroutine %d (step=%v): logits differ by %g", g, step, maxAbsDiff(got, want))
			}
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
