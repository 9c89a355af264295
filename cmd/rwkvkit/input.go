package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/statefile"
)

// inputFlags are the ways a command is told which tokens to feed.
type inputFlags struct {
	tokens, text, textFile, vocab, state string
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
	registerState(f, &in.state)
}

func registerState(f *pflag.FlagSet, path *string) {
	f.StringVar(path, "state", "", "start from the state in FILE (saved by run --save-state, or a state-tuned .pth/.st)")
}

// startState reads the state file at path for a model described by info;
// no path means the initial state (nil).
func startState(path string, info format.ModelInfo) (*engine.Snapshot, error) {
	if path == "" {
		return nil, nil
	}
	return statefile.Load(path, info)
}

// ids returns the tokens the flags name, or def when none are given.
func (in *inputFlags) ids(vocab int, def string) ([]int, error) {
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

func readTextFile(path string) ([]byte, error) {
	const maxInput = 1 << 30
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxInput {
		return nil, fmt.Errorf("%s: %d bytes is more than the %d this command reads", path, fi.Size(), maxInput)
	}
	return os.ReadFile(path)
}
