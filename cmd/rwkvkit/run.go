package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/generate"
	"github.com/rwkvkit/rwkvkit/statefile"
)

func newRun() *cobra.Command {
	var (
		prompt, vocab    string
		state, saveState string
		n                int
		sampler          generate.Sampler
		force            bool
	)
	cmd := &cobra.Command{
		Use:   "run MODEL --prompt TEXT",
		Short: "Generate text from a prompt, streaming it as it comes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 0 {
				return fmt.Errorf("-n %d: must not be negative", n)
			}
			if saveState != "" {
				if err := atomicfile.Check(saveState, force, args[0], state); err != nil {
					return err
				}
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
			from, err := startState(state, e.Info())
			if err != nil {
				return err
			}
			if from != nil {
				if err := g.State.Restore(from); err != nil {
					return err
				}
			}
			if err := g.Feed(ctx, ids); err != nil {
				return err
			}
			if saveState != "" {
				snap, err := g.State.Snapshot()
				if err != nil {
					return err
				}
				if err := statefile.Save(ctx, saveState, snap, force); err != nil {
					return err
				}
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
	registerState(f, &state)
	f.StringVar(&saveState, "save-state", "", "save the state after the prompt to FILE, for a later --state")
	f.BoolVarP(&force, "force", "f", false, "replace the --save-state file if it exists")
	cmd.MarkFlagRequired("prompt")
	return cmd
}
