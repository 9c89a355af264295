package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/generate"
	"github.com/rwkvkit/rwkvkit/quantize"
)

// runStats is what run reports at the end (on stderr, or as JSON).
type runStats struct {
	Seed                      uint64  `json:"seed"`
	PromptTokens              int     `json:"prompt_tokens"`
	PromptSeconds             float64 `json:"prompt_seconds"`
	PromptTokensPerSecond     float64 `json:"prompt_tokens_per_second"`
	GeneratedTokens           int     `json:"generated_tokens"`
	GenerationSeconds         float64 `json:"generation_seconds"`
	GenerationTokensPerSecond float64 `json:"generation_tokens_per_second"`
	Text                      *string `json:"text,omitempty"` // --json only
}

func statsOf(seed uint64, s generate.Stats) runStats {
	return runStats{Seed: seed,
		PromptTokens: s.Fed, PromptSeconds: s.FeedTime.Seconds(), PromptTokensPerSecond: s.FedPerSecond(),
		GeneratedTokens: s.Generated, GenerationSeconds: s.GenerateTime.Seconds(), GenerationTokensPerSecond: s.GeneratedPerSecond()}
}

func newRun() *cobra.Command {
	var (
		prompt, promptFile, vocab string
		state, saveTo             string
		n                         int
		sf                        samplerFlags
		dev                       deviceFlag
		rules                     []quantize.Rule
		force, asJSON             bool
	)
	cmd := &cobra.Command{
		Use: "run MODEL (--prompt TEXT | --prompt-file FILE)",
		Example: `  rwkvkit run tiny.st --prompt "The river " -n 60
  rwkvkit run tiny.st --prompt "The river " -n 60 --temperature 0     # always the most likely token
  rwkvkit run tiny.st --prompt "The river " -n 0 --save-state river.rkv
  rwkvkit run tiny.st --state river.rkv --prompt "ran " -n 60 --seed 7
  printf 'User: hi\n\nAssistant:' | rwkvkit run model.st --prompt-file -`,
		Short: "Generate text from a prompt, streaming it as it comes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 0 {
				return fmt.Errorf("-n %d: must not be negative", n)
			}
			sampler, random, err := sf.sampler()
			if err != nil {
				return err
			}
			text, err := promptText(cmd, prompt, promptFile)
			if err != nil {
				return err
			}
			if err := checkState(state); err != nil {
				return err
			}
			if saveTo != "" {
				if err := atomicfile.Check(saveTo, force, args[0], state); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			e, err := loadModel(ctx, args[0], dev.c, rules, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer e.Close()
			tok, err := tokenizerFor(e.Info().Vocab, vocab)
			if err != nil {
				return err
			}
			ids := tok.Encode(text)
			if len(ids) == 0 {
				return fmt.Errorf("the prompt is empty")
			}
			g, err := generate.New(e, tok, sampler)
			if err != nil {
				return err
			}
			if err := resume(g.State, state, e.Info()); err != nil {
				return err
			}
			if random && !asJSON && n > 0 { // -n 0 samples nothing
				fmt.Fprintf(cmd.ErrOrStderr(), "seed: %d\n", sampler.Seed)
			}
			if err := g.Feed(ctx, ids); err != nil {
				return err
			}
			if saveTo != "" {
				if err := saveState(ctx, g.State, saveTo, force); err != nil {
					return err
				}
				if !asJSON {
					fmt.Fprintf(cmd.ErrOrStderr(), "saved the state after the prompt to %s\n", saveTo)
				}
			}
			var out io.Writer = cmd.OutOrStdout()
			var gen strings.Builder
			if asJSON {
				out = &gen
			}
			_, err = g.Generate(ctx, n, out)
			st := statsOf(sampler.Seed, g.Stats())
			if asJSON {
				if err != nil {
					return err
				}
				t := gen.String()
				st.Text = &t
				return printJSON(cmd.OutOrStdout(), st)
			}
			if n == 0 { // the prompt only: nothing was written to end
				fmt.Fprintf(cmd.ErrOrStderr(), "prompt: %d tokens in %.3f s (%.1f tokens/s)\n", st.PromptTokens, st.PromptSeconds, st.PromptTokensPerSecond)
				return err
			}
			fmt.Fprintln(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "prompt: %d tokens in %.3f s (%.1f tokens/s); generated: %d tokens in %.3f s (%.1f tokens/s)\n",
				st.PromptTokens, st.PromptSeconds, st.PromptTokensPerSecond, st.GeneratedTokens, st.GenerationSeconds, st.GenerationTokensPerSecond)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&prompt, "prompt", "", "text to start from")
	f.StringVar(&promptFile, "prompt-file", "", "file whose text to start from (- reads stdin)")
	f.IntVarP(&n, "max-tokens", "n", 100, "number of tokens to generate (a World model may stop earlier at end-of-text)")
	sf.register(f)
	f.StringVar(&vocab, "vocab", "", "vocabulary file (.txt or .json) instead of the one the model's size calls for")
	registerState(f, &state)
	registerDevice(cmd, &dev, "where to run the model: auto (a hardware GPU when the GPU engine runs the model), cpu or gpu")
	registerRules(f, &rules)
	f.StringVar(&saveTo, "save-state", "", "save the state after the prompt to FILE, for a later --state")
	f.BoolVarP(&force, "force", "f", false, "replace the --save-state file if it exists")
	f.BoolVar(&asJSON, "json", false, "print the text and the statistics as one JSON object, at the end")
	cmd.MarkFlagsOneRequired("prompt", "prompt-file")
	cmd.MarkFlagsMutuallyExclusive("prompt", "prompt-file")
	return cmd
}
