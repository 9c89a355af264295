package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/verify"
)

// streamLogits loads the model at path and streams its logits after each
// of the tokens to each, a chunk at a time (verify.Stream), with a progress
// bar and a line saying how fast on stderr. The tokens are ids, or without
// them those the input flags give for the model's vocabulary; begin, if
// set, is told them and the vocabulary before the first chunk. Given ids,
// they are those of the model file of, whose vocabulary (of size vocab) it
// must share. The engine is closed before it returns, so two models are
// never held at once.
func streamLogits(cmd *cobra.Command, path string, in *inputFlags, ids []int, of string, vocab int,
	begin func(ids []int, vocab int) error, each func(start int, rows [][]float32) error) ([]int, error) {
	ctx := cmd.Context()
	var rules []quantize.Rule
	if ids == nil { // the model verified, not its reference
		rules = in.rules
	}
	e, err := loadModel(ctx, path, in.device.c, rules, cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	defer e.Close()
	if ids != nil {
		if v := e.Info().Vocab; v != vocab {
			return nil, fmt.Errorf("%s has a vocabulary of %d, %s of %d", path, v, of, vocab)
		}
	} else if ids, err = in.ids(e.Info().Vocab, verify.SampleText); err != nil {
		return nil, err
	}
	if begin != nil {
		if err := begin(ids, e.Info().Vocab); err != nil {
			return nil, err
		}
	}
	from, err := startState(in.state, e.Info())
	if err != nil {
		return nil, err
	}
	bar := newTokenProgress(len(ids), path)
	start := time.Now()
	err = verify.Stream(ctx, e, ids, &verify.LogitsOptions{From: from, Progress: func(done, _ int) { bar.Set(done) }}, each)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	bar.Finish()
	s := time.Since(start).Seconds()
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d tokens in %.3f s (%.1f tokens/s)\n", path, len(ids), s, perSecond(len(ids), s))
	return ids, nil
}
