package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/quantize"
)

// maxInput bounds the text a command reads from a file or stdin.
const maxInput = 1 << 30

// inputFlags are the ways a command is told which tokens to feed: ids, a
// literal text, or a text file ("-": stdin), and where to start from.
type inputFlags struct {
	tokens, text, textFile, vocab, state string
	device                               deviceFlag
	rules                                []quantize.Rule // --int8, --nf4, --sf4: quantized at load

	ids0 []int  // --tokens, parsed
	body string // the text, read
	read bool   // a text was given
}

func (in *inputFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&in.tokens, "tokens", "", "comma-separated token ids")
	f.StringVar(&in.text, "text", "", "text to tokenize")
	f.StringVar(&in.textFile, "text-file", "", "file whose text is tokenized (- reads stdin)")
	f.StringVar(&in.vocab, "vocab", "", "vocabulary file (.txt or .json) instead of the one the model's size calls for")
	registerState(f, &in.state)
	registerDevice(cmd, &in.device, "where to run the model: auto (a hardware GPU when the GPU engine runs the model), cpu or gpu")
	registerRules(f, &in.rules)
}

// resolve checks the flags and reads their input (stdin for "-"), before
// any model is loaded.
func (in *inputFlags) resolve(cmd *cobra.Command) error {
	if err := checkState(in.state); err != nil {
		return err
	}
	f := cmd.Flags()
	given := 0
	for _, name := range []string{"tokens", "text", "text-file"} {
		if f.Changed(name) {
			given++
		}
	}
	if given > 1 {
		return fmt.Errorf("give one of --tokens, --text and --text-file")
	}
	switch {
	case f.Changed("tokens"):
		ids, err := parseIDs(in.tokens)
		if err != nil {
			return fmt.Errorf("--tokens: %w", err)
		}
		if len(ids) == 0 {
			return fmt.Errorf("--tokens: no ids")
		}
		in.ids0 = ids
	case f.Changed("text"):
		in.body, in.read = in.text, true
	case f.Changed("text-file"):
		b, err := readInput(in.textFile, cmd.InOrStdin())
		if err != nil {
			return err
		}
		in.body, in.read = string(b), true
	}
	return nil
}

// ids returns the tokens of the resolved input for a model of vocab
// outputs, or those of def when no input was given (def "": an error).
func (in *inputFlags) ids(vocab int, def string) ([]int, error) {
	if in.ids0 != nil {
		for i, id := range in.ids0 {
			if id >= vocab {
				return nil, fmt.Errorf("--tokens: token %d at position %d is outside the model's vocabulary of %d", id, i, vocab)
			}
		}
		return in.ids0, nil
	}
	text := in.body
	if !in.read {
		if def == "" {
			return nil, fmt.Errorf("no input: give --tokens, --text or --text-file")
		}
		text = def
	}
	tok, err := tokenizerFor(vocab, in.vocab)
	if err != nil {
		return nil, err
	}
	ids := tok.Encode(text)
	if len(ids) == 0 {
		return nil, fmt.Errorf("the text gives no tokens")
	}
	return ids, nil
}

// readInput reads the file at path, or stdin for "-", up to maxInput bytes.
func readInput(path string, stdin io.Reader) ([]byte, error) {
	r, name := stdin, "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, name = f, path
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("%s: more than the %d bytes this command reads", name, maxInput)
	}
	return b, nil
}

// promptText is the text of --prompt or of --prompt-file (stdin for -).
func promptText(cmd *cobra.Command, prompt, file string) (string, error) {
	if !cmd.Flags().Changed("prompt-file") {
		return prompt, nil
	}
	b, err := readInput(file, cmd.InOrStdin())
	return string(b), err
}
