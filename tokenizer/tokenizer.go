package tokenizer

import (
	"errors"
	"fmt"
)

// EndOfText is the id that ends a document in the World vocabulary. It has
// no bytes of its own: decoding it yields nothing.
const EndOfText = 0

// ErrUnknownID is returned (wrapped) when decoding an id that names no token.
var ErrUnknownID = errors.New("unknown token id")

// A Tokenizer maps text to token ids and ids back to bytes.
type Tokenizer interface {
	// Encode returns the token ids of text. Any byte string, valid UTF-8
	// or not, can be encoded.
	Encode(text string) []int
	// Decode returns the concatenated bytes of the tokens. An id that names
	// no token is an error wrapping ErrUnknownID.
	Decode(ids []int) ([]byte, error)
	// VocabSize is one more than the largest id the tokenizer knows.
	// A model's embedding may be larger (World models have 65536 rows).
	VocabSize() int
}

// Bytes is the tokenizer of models with a 256-entry vocabulary: the token id
// of each byte is its value.
type Bytes struct{}

// Encode returns the bytes of text as ids.
func (Bytes) Encode(text string) []int {
	ids := make([]int, len(text))
	for i := 0; i < len(text); i++ {
		ids[i] = int(text[i])
	}
	return ids
}

// Decode returns the bytes the ids stand for; ids must lie in [0, 256).
func (Bytes) Decode(ids []int) ([]byte, error) {
	b := make([]byte, len(ids))
	for i, id := range ids {
		if id < 0 || id > 255 {
			return nil, fmt.Errorf("tokenizer: id %d: %w (byte vocabulary)", id, ErrUnknownID)
		}
		b[i] = byte(id)
	}
	return b, nil
}

// VocabSize returns 256.
func (Bytes) VocabSize() int { return 256 }
