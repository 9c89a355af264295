package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/tokenizer"
)

// loadModel loads the model file at path into the CPU engine.
func loadModel(ctx context.Context, path string) (engine.Engine, error) {
	return model.Load(ctx, path, device.CPU)
}

// tokenizerFor picks the tokenizer a model's vocabulary calls for, or the
// one in vocabPath.
func tokenizerFor(vocab int, vocabPath string) (tokenizer.Tokenizer, error) {
	tok, err := model.Tokenizer(vocab, vocabPath)
	if errors.Is(err, model.ErrNoTokenizer) {
		return nil, fmt.Errorf("%w: give one with --vocab", err)
	}
	return tok, err
}
