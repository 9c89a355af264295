package runner

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

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
				ref := m.NewState()
				feed(ref, toks[:2])
				want := feed(ref, toks[2:])

				s := m.NewState()
				feed(s, toks[:2])
				clone := s.Clone()
				saved, err := s.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				feed(s, []int{0}) // the original moves on; the copies must not notice
				if got := feed(clone, toks[2:]); !slices.Equal(got, want) {
					t.Errorf("step=%v: clone: max |diff| %g", useStep, maxAbsDiff(got, want))
				}
				restored := m.NewState()
				if err := restored.UnmarshalBinary(saved); err != nil {
					t.Fatal(err)
				}
				if got := feed(restored, toks[2:]); !slices.Equal(got, want) {
					t.Errorf("step=%v: restored: max |diff| %g", useStep, maxAbsDiff(got, want))
				}
				// The state matters: [c] alone predicts differently.
				if fresh := feed(m.NewState(), toks[2:]); maxAbsDiff(fresh, want) < 1e-3 {
					t.Errorf("step=%v: logits of [c] from a fresh state equal those after [a, b]", useStep)
				}
			}
		})
	}
}

func TestStateMismatch(t *testing.T) {
	v4 := loadFile(t, filepath.Join(tinyDir, "tiny-rwkv-4v0-660K.pth"))
	v7 := loadFile(t, filepath.Join(tinyDir, "tiny-rwkv-7v0-834K.pth"))
	if _, err := v7.Step(v4.NewState(), 1); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("v7 model with a v4 state: %v, want ErrStateMismatch", err)
	}
	saved, _ := v4.NewState().MarshalBinary()
	if err := v7.NewState().UnmarshalBinary(saved); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("v4 state into a v7 state: %v, want ErrStateMismatch", err)
	}
	var any State // a zero State takes any well-formed saved state
	if err := any.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	if _, err := v4.Step(&any, 1); err != nil {
		t.Errorf("restored into a zero State: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("RWKVSTAT"), saved[:len(saved)-1], append([]byte("XXXXSTAT"), saved[8:]...)} {
		if err := v4.NewState().UnmarshalBinary(bad); err == nil {
			t.Errorf("UnmarshalBinary accepted %d malformed bytes", len(bad))
		}
	}
	bumped := slices.Clone(saved)
	bumped[8]++ // a newer layout
	if err := v4.NewState().UnmarshalBinary(bumped); err == nil {
		t.Error("UnmarshalBinary accepted a newer layout version")
	}
}

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
	m, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	toks := []int{34, 105, 110, 32, 116, 104, 101, 32, 99, 97, 116}
	run := func(step bool) ([]float32, error) {
		s := m.NewState()
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
