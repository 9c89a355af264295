package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/verify"
)

// A loaded is a model loaded to be verified or to be verified against,
// with the tokens it reads and the state it starts from.
type loaded struct {
	cmd  *cobra.Command
	path string
	e    engine.Engine
	ids  []int
	from *engine.Snapshot
}

// loadFor loads the model at path with its tokens: ids, or without them
// those the input flags give for the model's vocabulary. Given ids, they
// are those of the model file of, whose vocabulary (of size vocab) it must
// share.
func loadFor(cmd *cobra.Command, path string, in *inputFlags, ids []int, of string, vocab int) (*loaded, error) {
	ctx := cmd.Context()
	var rules []quantize.Rule
	if ids == nil { // the model verified, not its reference
		rules = in.rules
	}
	e, err := loadModel(ctx, path, in.device.c, rules, cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	l := &loaded{cmd: cmd, path: path, e: e, ids: ids}
	if ids != nil {
		if v := e.Info().Vocab; v != vocab {
			l.close()
			return nil, fmt.Errorf("%s has a vocabulary of %d, %s of %d", path, v, of, vocab)
		}
	} else if l.ids, err = in.ids(e.Info().Vocab, verify.SampleText); err != nil {
		l.close()
		return nil, err
	}
	if l.from, err = startState(in.state, e.Info()); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// close closes the engine, once.
func (l *loaded) close() {
	if l.e != nil {
		l.e.Close()
		l.e = nil
	}
}

// run is the model's verify.Run: its logits streamed a chunk at a time,
// with a progress bar and a line saying how fast on stderr. It closes the
// engine when done, so that two models are never held at once.
func (l *loaded) run(tokens []int, each func(start int, rows [][]float32) error) error {
	defer l.close()
	bar := newTokenProgress(len(tokens), l.path)
	start := time.Now()
	opts := &verify.LogitsOptions{From: l.from, Progress: func(done, _ int) { bar.Set(done) }}
	if err := verify.Stream(l.cmd.Context(), l.e, tokens, opts, each); err != nil {
		return fmt.Errorf("%s: %w", l.path, err)
	}
	bar.Finish()
	s := time.Since(start).Seconds()
	fmt.Fprintf(l.cmd.ErrOrStderr(), "%s: %d tokens in %.3f s (%.1f tokens/s)\n", l.path, len(tokens), s, perSecond(len(tokens), s))
	return nil
}
