// Package model opens RWKV model files: as tensor sources in every format
// rwkvkit reads (.pth zip or legacy, .st/.safetensors, .rkv, RWKV-6/7 .gguf), recognised
// by their first bytes; as an inference engine on the device asked for; and
// with the tokenizer their vocabulary calls for.
package model

import (
	"errors"
	"fmt"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/tokenizer"

	// The readers register their formats with format.Open.
	_ "github.com/rwkvkit/rwkvkit/gguf"
	_ "github.com/rwkvkit/rwkvkit/pth"
	_ "github.com/rwkvkit/rwkvkit/safetensors"
	_ "github.com/rwkvkit/rwkvkit/serialize"
)

// Open opens the model, LoRA or state file at path, in any format rwkvkit
// reads. Errors name the file. Tensors are read when asked for; the file
// stays open until the source is closed.
func Open(path string) (*format.Source, error) {
	return format.Open(path)
}

// ErrNoTokenizer is wrapped by Tokenizer's error for a vocabulary size no
// built-in tokenizer fits.
var ErrNoTokenizer = errors.New("no tokenizer")

// Tokenizer returns the tokenizer for a model of vocab outputs: the one
// in the vocabulary file vocabPath when it is not empty; otherwise bytes for
// a vocabulary of 256 and the RWKV World tokenizer for one at least as large
// as the World vocabulary (models pad their output to a multiple of 64).
func Tokenizer(vocab int, vocabPath string) (tokenizer.Tokenizer, error) {
	if vocabPath != "" {
		return tokenizer.LoadFile(vocabPath)
	}
	switch {
	case vocab == 256:
		return tokenizer.Bytes{}, nil
	case vocab >= tokenizer.World().VocabSize():
		return tokenizer.World(), nil
	}
	return nil, fmt.Errorf("%w for a vocabulary of %d", ErrNoTokenizer, vocab)
}
