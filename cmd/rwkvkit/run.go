package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/generate"
	"github.com/rwkvkit/rwkvkit/runner"
	"github.com/rwkvkit/rwkvkit/tokenizer"
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
			m, err := loadModel(args[0])
			if err != nil {
				return err
			}
			tok, err := tokenizerFor(m, vocab)
			if err != nil {
				return err
			}
			ids := tok.Encode(prompt)
			if len(ids) == 0 {
				return fmt.Errorf("--prompt is empty")
			}
			out := cmd.OutOrStdout()
			_, err = generateText(m, tok, ids, n, &sampler, out)
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

// generate feeds the prompt, then samples n tokens and streams their text
// to w as it comes (a World model stops early at end-of-text). It returns
// the generated ids.
func generateText(m *runner.Model, tok tokenizer.Tokenizer, prompt []int, n int, s *generate.Sampler, w io.Writer) ([]int, error) {
	state, err := m.NewState()
	if err != nil {
		return nil, err
	}
	logits, err := m.Forward(state, prompt, false)
	if err != nil {
		return nil, err
	}
	_, world := tok.(*tokenizer.Vocab)
	dec := tokenizer.NewStreamDecoder(tok, w)
	var out []int
	for range n {
		id := s.Sample(logits)
		if world && id == tokenizer.EndOfText {
			break
		}
		out = append(out, id)
		if err := dec.WriteToken(id); err != nil && !errors.Is(err, tokenizer.ErrUnknownID) {
			return out, err
		}
		if logits, err = m.Step(state, id); err != nil {
			return out, err
		}
	}
	return out, dec.Flush()
}
