package verify

import (
	"fmt"
	"os"

	"github.com/rwkvkit/rwkvkit/logits"
)

// besideRows is how many positions AddBeside reads from its file at a
// time: 64 rows of 65,536 logits are 16 MiB.
const besideRows = 64

// AddBeside scores the next len(rows) positions, rows beside the same
// positions' rows in other (read besideRows at a time): rows are the
// model's and other's the reference's, or with model false the other way
// round.
func (c *Comparer) AddBeside(rows [][]float32, other *logits.Reader, model bool) error {
	if len(rows) == 0 {
		return nil
	}
	V := len(rows[0])
	if n := min(besideRows, len(c.tokens)) * V; len(c.beside) != n {
		c.beside = make([]float32, n)
	}
	buf := logits.Rows(c.beside, V)
	for i := 0; i < len(rows); i += len(buf) {
		n := min(len(buf), len(rows)-i)
		if err := other.ReadRows(c.next, buf[:n]); err != nil {
			return err
		}
		m, ref := rows[i:i+n], buf[:n]
		if !model {
			m, ref = ref, m
		}
		if err := c.Add(m, ref); err != nil {
			return err
		}
	}
	return nil
}

// A Spill holds one run's logits in a temporary file, written in order a
// chunk at a time, while another run makes the logits they are compared
// with (AddBeside): two models need not be loaded at once, nor their
// logits held whole.
type Spill struct {
	f *os.File
	*logits.Reader
}

// NewSpill makes a Spill for rows × vocab logits, in a new file in the
// default directory for temporary files.
func NewSpill(rows, vocab int) (*Spill, error) {
	f, err := os.CreateTemp("", "rwkvkit-logits-*.f32")
	if err != nil {
		return nil, fmt.Errorf("verify: a temporary file for logits: %w", err)
	}
	return &Spill{f: f, Reader: logits.NewReader(f, f.Name(), rows, vocab)}, nil
}

// Write appends rows.
func (s *Spill) Write(rows [][]float32) error {
	if err := logits.Write(s.f, rows); err != nil {
		return fmt.Errorf("verify: logits in %s: %w", s.f.Name(), err)
	}
	return nil
}

// Close closes and removes the file.
func (s *Spill) Close() error {
	err := s.f.Close()
	if rerr := os.Remove(s.f.Name()); err == nil {
		err = rerr
	}
	return err
}

// A Run streams a model's logits after each of tokens to each, a chunk of
// positions at a time and in order (as Stream does on a loaded engine).
type Run func(tokens []int, each func(start int, rows [][]float32) error) error

// CompareRuns computes the Metrics of model's logits on tokens (of a
// vocabulary of vocab) against ref's, running model, then ref: model's
// rows wait in a Spill while ref runs, so the two runs never overlap (two
// models need not be loaded at once) and neither's logits are held whole.
func CompareRuns(tokens []int, vocab int, model, ref Run, perPosition bool) (Metrics, error) {
	sp, err := NewSpill(len(tokens), vocab)
	if err != nil {
		return Metrics{}, err
	}
	defer sp.Close()
	if err := model(tokens, func(_ int, rows [][]float32) error { return sp.Write(rows) }); err != nil {
		return Metrics{}, err
	}
	c := NewComparer(tokens, true, perPosition)
	if err := ref(tokens, func(_ int, rows [][]float32) error { return c.AddBeside(rows, sp.Reader, false) }); err != nil {
		return Metrics{}, err
	}
	return c.Metrics()
}

// CompareFile computes the Metrics of model's logits on tokens (of a
// vocabulary of vocab) against the logits file at path (package logits),
// read as the model's rows come; path "" computes the perplexity only.
func CompareFile(tokens []int, vocab int, model Run, path string, perPosition bool) (Metrics, error) {
	c := NewComparer(tokens, path != "", perPosition)
	each := func(_ int, rows [][]float32) error { return c.Add(rows, nil) }
	if path != "" {
		f, err := logits.Open(path, len(tokens), vocab)
		if err != nil {
			return Metrics{}, err
		}
		defer f.Close()
		each = func(_ int, rows [][]float32) error { return c.AddBeside(rows, f.Reader, true) }
	}
	if err := model(tokens, each); err != nil {
		return Metrics{}, err
	}
	return c.Metrics()
}
