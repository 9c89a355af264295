package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/logits"
	"github.com/rwkvkit/rwkvkit/runner"
)

// inputFlags are the ways a command is told which tokens to feed.
type inputFlags struct {
	tokens, text, textFile, vocab string
}

func (in *inputFlags) register(cmd *cobra.Command, withFile bool) {
	f := cmd.Flags()
	f.StringVar(&in.tokens, "tokens", "", "comma-separated token ids")
	if withFile {
		f.StringVar(&in.textFile, "text", "", "file whose text is tokenized")
	} else {
		f.StringVar(&in.text, "text", "", "text to tokenize")
	}
	f.StringVar(&in.vocab, "vocab", "", "vocabulary file (.txt or .json) instead of the one the model's size calls for")
}

// ids returns the tokens the flags name, or def when none are given.
func (in *inputFlags) ids(m *runner.Model, def string) ([]int, error) {
	given := 0
	for _, s := range []string{in.tokens, in.text, in.textFile} {
		if s != "" {
			given++
		}
	}
	if given > 1 {
		return nil, fmt.Errorf("give either --tokens or --text, not both")
	}
	if in.tokens != "" {
		return parseIDs(in.tokens)
	}
	text := in.text
	if in.textFile != "" {
		b, err := readTextFile(in.textFile)
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	if text == "" {
		if def == "" {
			return nil, fmt.Errorf("no input: give --tokens or --text")
		}
		text = def
	}
	tok, err := tokenizerFor(m, in.vocab)
	if err != nil {
		return nil, err
	}
	ids := tok.Encode(text)
	if len(ids) == 0 {
		return nil, fmt.Errorf("the text gives no tokens")
	}
	return ids, nil
}

func newLogits() *cobra.Command {
	var (
		in    inputFlags
		out   string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "logits MODEL (--tokens 1,2,3 | --text TEXT) --out FILE",
		Short: "Write the logits after each token: float32 little-endian, [tokens, vocabulary]",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := loadModel(args[0])
			if err != nil {
				return err
			}
			ids, err := in.ids(m, "")
			if err != nil {
				return err
			}
			state, err := m.NewState()
			if err != nil {
				return err
			}
			flat, err := m.Forward(state, ids, true)
			if err != nil {
				return err
			}
			if err := logits.WriteFile(cmd.Context(), out, flat, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d × %d float32\n", out, len(ids), m.Info().Vocab)
			return nil
		},
	}
	in.register(cmd, false)
	cmd.Flags().StringVarP(&out, "out", "o", "", "output file")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace the output if it exists")
	cmd.MarkFlagRequired("out")
	return cmd
}
