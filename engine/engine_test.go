package engine

import (
	"errors"
	"testing"
)

// CheckBatch names the first sequence no engine can run, and why; a batch
// of good sequences, the empty batch among them, passes.
func TestCheckBatch(t *testing.T) {
	for _, c := range []struct {
		name  string
		batch []Sequence
		want  string // "" when the batch is good
	}{
		{"empty batch", nil, ""},
		{"good", []Sequence{{Tokens: []int{0, 9}}, {Tokens: []int{3}, Output: OutputAll}}, ""},
		{"no tokens", []Sequence{{Tokens: []int{1}}, {}}, "sequence 1 has no tokens"},
		{"token past the vocabulary", []Sequence{{Tokens: []int{1, 10}}}, "sequence 0: token outside the vocabulary: token 10 at position 1 (vocabulary 10)"},
		{"negative token", []Sequence{{Tokens: []int{-1}}}, "sequence 0: token outside the vocabulary: token -1 at position 0 (vocabulary 10)"},
		{"unknown output", []Sequence{{Tokens: []int{1}, Output: 7}}, "sequence 0: unknown output 7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckBatch(c.batch, 10)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("CheckBatch = %q, want %q", got, c.want)
			}
			if c.want != "" && errors.Is(err, ErrToken) != (c.name == "token past the vocabulary" || c.name == "negative token") {
				t.Errorf("errors.Is(%v, ErrToken) = %v", err, errors.Is(err, ErrToken))
			}
		})
	}
}
