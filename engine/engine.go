// Package engine defines what an RWKV inference engine is, so that the
// command line, verification and generation work the same on every
// backend: the CPU engine (package runner), which is the reference, and the
// GPU engine.
//
// An [Engine] holds one loaded model. It runs a batch of sequences in one
// call, each with its own tokens, its own [State] and its own [Output]
// wanted; an engine stacks the rows of all sequences into the same matrix
// products, so a batch costs little more than its longest member reads of
// the weights. States are values an engine owns (on the GPU they stay in
// device memory); [State.Snapshot] copies one to the host as a [Snapshot],
// the engine-neutral form that any engine can [State.Restore] from and that
// package statefile saves to a file. A session can so move between engines.
package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/rwkvkit/rwkvkit/format"
)

// Output says which logits a sequence wants back from [Engine.Run].
type Output int

const (
	// OutputNone advances the state only (a prompt whose logits are not
	// needed yet).
	OutputNone Output = iota
	// OutputLast returns the logits after the sequence's last token.
	OutputLast
	// OutputAll returns the logits after every token, one row per token.
	OutputAll
)

func (o Output) String() string {
	switch o {
	case OutputNone:
		return "none"
	case OutputLast:
		return "last"
	case OutputAll:
		return "all"
	}
	return "Output(?)"
}

// A Sequence is one member of a batch.
type Sequence struct {
	Tokens []int  // fed in order; at least one
	State  State  // advanced by the tokens; made by the same engine
	Output Output // what Logits receives
	// Logits receives len(Tokens)×vocab (OutputAll), vocab (OutputLast) or
	// no values (OutputNone), row-major. Run reuses its backing array when
	// it is large enough.
	Logits []float32
}

// An Engine runs one loaded RWKV model. Its methods may be called from
// several goroutines; Run calls on one engine may be serialised by it.
type Engine interface {
	// Info describes the loaded model.
	Info() format.ModelInfo
	// NewState returns the initial state of a sequence.
	NewState() (State, error)
	// Run feeds every sequence of the batch its tokens, advancing its
	// state, and sets its Logits. The states of one batch must be
	// distinct. On error no state is guaranteed to be unchanged.
	Run(ctx context.Context, batch []Sequence) error
	// Close releases what the engine holds (device memory, workers).
	Close() error
}

// A State is an engine's recurrent memory of one sequence.
type State interface {
	// Snapshot copies the state to host memory.
	Snapshot() (*Snapshot, error)
	// Restore replaces the state with s, which must fit the model.
	Restore(s *Snapshot) error
}

// CheckBatch returns the error for the first sequence of batch an engine
// of a vocabulary of vocab cannot run: one with no tokens, a token outside
// the vocabulary (wrapping ErrToken) or an unknown Output. Engines make
// these checks before they change any state, so that every engine refuses
// the same batches with the same words.
func CheckBatch(batch []Sequence, vocab int) error {
	for i, sq := range batch {
		if len(sq.Tokens) == 0 {
			return fmt.Errorf("sequence %d has no tokens", i)
		}
		for p, t := range sq.Tokens {
			if t < 0 || t >= vocab {
				return fmt.Errorf("sequence %d: %w: token %d at position %d (vocabulary %d)", i, ErrToken, t, p, vocab)
			}
		}
		if sq.Output < OutputNone || sq.Output > OutputAll {
			return fmt.Errorf("sequence %d: unknown output %d", i, sq.Output)
		}
	}
	return nil
}

// Errors an engine wraps, so that callers can tell the cases apart.
var (
	// ErrToken is wrapped by the error for a token outside the vocabulary.
	ErrToken = errors.New("token outside the vocabulary")
	// ErrStateMismatch is wrapped when a state does not fit the model or the
	// engine.
	ErrStateMismatch = errors.New("state does not match the model")
)
