package verify

import (
	"os"
	"reflect"
	"testing"
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
