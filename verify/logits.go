package verify

import (
	"context"
	"errors"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/logits"
)

// LogitsOptions tune Logits and Stream. A nil *LogitsOptions means the
// defaults.
type LogitsOptions struct {
	// From is the state to start from; nil means the initial state.
	From *engine.Snapshot
	// Progress, if set, is called after each chunk of tokens with the
	// tokens done so far and their total; the tokens are then fed in chunks
	// of ProgressChunk, which gives the CPU engine's logits bit for bit (a
	// GPU engine's passes of other lengths may round otherwise).
	Progress func(done, total int)
}

// ProgressChunk is how many tokens Logits feeds between Progress calls,
// and Stream always: a GPU engine's default pass, so that progress costs it
// little (a 7B verify of 4,096 tokens on an H200 took 2.5–2.7 s a model in
// chunks of 512, 2.3–2.5 s in chunks of 2048).
const ProgressChunk = 2048

// Logits runs tokens through e and returns the logits after every one of
// them, one row per token.
func Logits(ctx context.Context, e engine.Engine, tokens []int, opts *LogitsOptions) ([][]float32, error) {
	if opts == nil {
		opts = &LogitsOptions{}
	}
	if len(tokens) == 0 {
		return nil, errNoTokens
	}
	chunk := len(tokens)
	if opts.Progress != nil {
		chunk = ProgressChunk
	}
	V := e.Info().Vocab
	flat := make([]float32, len(tokens)*V)
	err := feed(ctx, e, tokens, opts, chunk, func(done, n int) []float32 {
		return flat[done*V : (done+n)*V : (done+n)*V]
	}, nil)
	if err != nil {
		return nil, err
	}
	return logits.Rows(flat, V), nil
}

var errNoTokens = errors.New("verify: no tokens")

// Stream runs tokens through e as Logits does, ProgressChunk tokens at a
// time, and hands each chunk's rows to each in order: the rows of
// positions start, start+1, …, which stay valid only until each returns.
// each runs while e computes the next chunk, so it holds two chunks'
// logits where Logits holds every position's.
func Stream(ctx context.Context, e engine.Engine, tokens []int, opts *LogitsOptions, each func(start int, rows [][]float32) error) error {
	if opts == nil {
		opts = &LogitsOptions{}
	}
	var bufs [2][]float32
	return feed(ctx, e, tokens, opts, ProgressChunk, func(done, n int) []float32 {
		b := &bufs[done/ProgressChunk%2] // not the one each may still be reading
		need := n * e.Info().Vocab
		if cap(*b) < need {
			*b = make([]float32, need)
		}
		return (*b)[:need:need]
	}, each)
}

// feed runs tokens through e in chunks of chunk tokens, each chunk's
// logits written into out(done, n), then handed to each (if set), which
// runs while the next chunk is computed: out must not give the memory of
// the chunk before.
func feed(ctx context.Context, e engine.Engine, tokens []int, opts *LogitsOptions, chunk int,
	out func(done, n int) []float32, each func(start int, rows [][]float32) error) error {
	if len(tokens) == 0 {
		return errNoTokens
	}
	st, err := e.NewState()
	if err != nil {
		return err
	}
	if opts.From != nil {
		if err := st.Restore(opts.From); err != nil {
			return err
		}
	}
	V := e.Info().Vocab
	var pending chan error // each of the chunk before, running
	wait := func() error {
		if pending == nil {
			return nil
		}
		err := <-pending
		pending = nil
		return err
	}
	for done := 0; done < len(tokens); {
		part := tokens[done:min(done+chunk, len(tokens))]
		rows := out(done, len(part)) // Run writes into it
		batch := []engine.Sequence{{Tokens: part, State: st, Output: engine.OutputAll, Logits: rows}}
		if err := e.Run(ctx, batch); err != nil {
			wait()
			return err
		}
		if &batch[0].Logits[0] != &rows[0] {
			copy(rows, batch[0].Logits)
		}
		if each != nil {
			if err := wait(); err != nil {
				return err
			}
			ch, start := make(chan error, 1), done
			go func() { ch <- each(start, logits.Rows(rows, V)) }()
			pending = ch
		}
		done += len(part)
		if opts.Progress != nil {
			opts.Progress(done, len(tokens))
		}
	}
	return wait()
}
