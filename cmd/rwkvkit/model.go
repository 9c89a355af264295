package main

import (
	"fmt"

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
	m, err := runner.Load(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// tokenizerFor picks the tokenizer a model's vocabulary calls for: bytes
// for vocabulary-256 models, the World vocabulary (or the one in vocabPath)
// otherwise.
func tokenizerFor(m *runner.Model, vocabPath string) (tokenizer.Tokenizer, error) {
	if vocabPath != "" {
		return tokenizer.LoadFile(vocabPath)
	}
	v := m.Info().Vocab
	switch {
	case v == 256:
		return tokenizer.Bytes{}, nil
	case v >= tokenizer.World().VocabSize():
		return tokenizer.World(), nil
	}
	return nil, fmt.Errorf("no tokenizer for a vocabulary of %d: give one with --vocab", v)
}

// rows splits flat row-major logits into one slice per position.
func rows(flat []float32, vocab int) [][]float32 {
	out := make([][]float32, len(flat)/vocab)
	for i := range out {
		out[i] = flat[i*vocab : (i+1)*vocab : (i+1)*vocab]
	}
	return out
}
