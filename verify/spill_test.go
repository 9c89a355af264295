package verify

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/rwkvkit/rwkvkit/logits"
)

// Either run's rows put by in a Spill and compared beside the other's, a
// few positions at a time, give Compare's metrics exactly; the file is
// gone after Close.
func TestSpillBeside(t *testing.T) {
	const T, V = 150, 50 // more positions than AddBeside reads at a time
	model, ref, tokens := testRows(T, V, 7, 17)
	want, err := Compare(model, ref, tokens, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, spillModel := range []bool{true, false} {
		kept, other := ref, model
		if spillModel {
			kept, other = model, ref
		}
		sp, err := NewSpill(T, V)
		if err != nil {
			t.Fatal(err)
		}
		for s := 0; s < T; s += 40 {
			if err := sp.Write(kept[s:min(s+40, T)]); err != nil {
				t.Fatal(err)
			}
		}
		c := NewComparer(tokens, true, true)
		for s := 0; s < T; s += 70 {
			if err := c.AddBeside(other[s:min(s+70, T)], sp.Reader, !spillModel); err != nil {
				t.Fatal(err)
			}
		}
		got, err := c.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("model's rows spilled %v: %+v, at once %+v", spillModel, got, want)
		}
		name := sp.f.Name()
		if err := sp.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(name); !os.IsNotExist(err) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

// rowsRun is a Run handing out rows in chunks of n, noting in order that
// it ran.
func rowsRun(rows [][]float32, n int, name string, order *[]string) Run {
	return func(tokens []int, each func(int, [][]float32) error) error {
		*order = append(*order, name+" starts")
		for s := 0; s < len(tokens); s += n {
			if err := each(s, rows[s:min(s+n, len(tokens))]); err != nil {
				return err
			}
		}
		*order = append(*order, name+" ends")
		return nil
	}
}

// CompareRuns runs the model to its end before the reference starts and
// gives Compare's metrics; CompareFile gives them against a logits file,
// and the perplexity alone without one.
func TestCompareRunsAndFile(t *testing.T) {
	const T, V = 130, 40
	model, ref, tokens := testRows(T, V, 3, 11)
	want, err := Compare(model, ref, tokens, false)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	got, err := CompareRuns(tokens, V, rowsRun(model, 33, "model", &order), rowsRun(ref, 50, "ref", &order), false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CompareRuns: %+v, want %+v", got, want)
	}
	if !slices.Equal(order, []string{"model starts", "model ends", "ref starts", "ref ends"}) {
		t.Errorf("runs in the order %v", order)
	}
	path := filepath.Join(t.TempDir(), "ref.f32")
	if err := logits.WriteFile(context.Background(), path, ref, false); err != nil {
		t.Fatal(err)
	}
	if got, err = CompareFile(tokens, V, rowsRun(model, 70, "model", &order), path, false); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("CompareFile: %+v, %v; want %+v", got, err, want)
	}
	alone, err := Compare(model, nil, tokens, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = CompareFile(tokens, V, rowsRun(model, 70, "model", &order), "", false); err != nil || !reflect.DeepEqual(got, alone) {
		t.Errorf("CompareFile without a file: %+v, %v; want %+v", got, err, alone)
	}
	if _, err := CompareFile(tokens, V+1, rowsRun(model, 70, "model", &order), path, false); err == nil {
		t.Error("a logits file of another vocabulary: no error")
	}
}
