package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/generate"
)

func newRun() *cobra.Command {
	var (
		prompt, vocab string
		n             int
		sampler       generate.Sampler
	)
	cmd := &cobra.Command{
		Use:   "run MODEL --prompt TEXT",
		Short: "Generate text from a prompt, streaming it as it comes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 0 {
				return fmt.Errorf("-n %d: must not be negative", n)
			}
			ctx := cmd.Context()
			e, err := loadModel(ctx, args[0])
			if err != nil {
				return err
			}
			defer e.Close()
			tok, err := tokenizerFor(e.Info().Vocab, vocab)
			if err != nil {
				return err
			}
			ids := tok.Encode(prompt)
			if len(ids) == 0 {
				return fmt.Errorf("--prompt is empty")
			}
			g, err := generate.New(e, tok, sampler)
			if err != nil {
				return err
			}
			if err := g.Feed(ctx, ids); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			_, err = g.Generate(ctx, n, out)
			fmt.Fprintln(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&prompt, "prompt", "", "text to start from")
	f.IntVarP(&n, "max-tokens", "n", 100, "number of tokens to generate (a World model may stop earlier at end-of-text)")
	f.Float32Var(&sampler.Temperature, "temperature", 1, "sampling temperature; 0 always takes the most likely token")
	f.Float32Var(&sampler.TopP, "top-p", 0.85, "nucleus sampling: keep the most likely tokens up to this total probability")
	f.Uint64Var(&sampler.Seed, "seed", 0, "random seed; the same seed gives the same text")
	f.StringVar(&vocab, "vocab", "", "vocabulary file (.txt or .json) instead of the one the model's size calls for")
	cmd.MarkFlagRequired("prompt")
	return cmd
}
