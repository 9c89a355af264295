package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/tokenizer"
)

// loadModel loads the model file at path into an engine on the device c
// names, quantizing the layers rules name, saying on log where it runs.
func loadModel(ctx context.Context, path string, c device.Choice, rules []quantize.Rule, log io.Writer) (engine.Engine, error) {
	start := time.Now()
	e, err := model.LoadQuantized(ctx, path, c, rules)
	if err != nil {
		return nil, err
	}
	where := "CPU"
	if s, ok := e.(fmt.Stringer); ok {
		where = s.String()
	}
	fmt.Fprintf(log, "device: %s; %s loaded in %.3f s\n", where, path, time.Since(start).Seconds())
	return e, nil
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
