package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/runner"
	"github.com/rwkvkit/rwkvkit/tokenizer"
)

// loadModel reads the model at path into the CPU runner; the file is closed
// once its weights are in memory.
func loadModel(path string) (*runner.Model, error) {
	src, err := openModel(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	m, err := runner.Load(context.Background(), src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// tokenizerFor picks the tokenizer a model's vocabulary calls for, or the
// one in vocabPath.
func tokenizerFor(m *runner.Model, vocabPath string) (tokenizer.Tokenizer, error) {
	tok, err := model.Tokenizer(m.Info().Vocab, vocabPath)
	if errors.Is(err, model.ErrNoTokenizer) {
		return nil, fmt.Errorf("%w: give one with --vocab", err)
	}
	return tok, err
}
