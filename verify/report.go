package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/logits"
)

// Thresholds are the limits a report is checked against; nil means not
// checked.
type Thresholds struct {
	MaxMeanKL      *float64 // mean KL divergence (reference ‖ model)
	MinTop1Percent *float64 // top-1 agreement, in percent
	MaxAbsDLogit   *float64 // largest |logit − reference logit|
}

// Any reports whether any threshold is set.
func (t Thresholds) Any() bool {
	return t.MaxMeanKL != nil || t.MinTop1Percent != nil || t.MaxAbsDLogit != nil
}

// Check returns a line for every threshold m misses. A NaN metric misses
// every threshold on it.
func (t Thresholds) Check(m Metrics) []string {
	var failed []string
	if t.MaxMeanKL != nil && !(m.MeanKL <= *t.MaxMeanKL) {
		failed = append(failed, fmt.Sprintf("mean KL %.6g > %g", m.MeanKL, *t.MaxMeanKL))
	}
	if t.MinTop1Percent != nil && !(m.Top1Percent >= *t.MinTop1Percent) {
		failed = append(failed, fmt.Sprintf("top-1 agreement %.2f%% < %g%%", m.Top1Percent, *t.MinTop1Percent))
	}
	if t.MaxAbsDLogit != nil && !(m.MaxAbsDiff <= *t.MaxAbsDLogit) {
		failed = append(failed, fmt.Sprintf("max |Δlogit| %.6g > %g", m.MaxAbsDiff, *t.MaxAbsDLogit))
	}
	return failed
}

// A Report is the outcome of a verification.
type Report struct {
	Model     string   `json:"model"`
	Reference string   `json:"reference,omitempty"`
	Tokens    int      `json:"tokens"`
	Metrics   Metrics  `json:"metrics"`
	Failed    []string `json:"failed,omitempty"` // the thresholds missed
	Passed    bool     `json:"passed"`           // no threshold missed
}

// NewReport compares the rows of logits of the model with those of the
// reference on tokens (ref nil: perplexity only) and checks th; thresholds
// without a reference are an error.
func NewReport(model, reference string, tokens []int, rows, ref [][]float32, th Thresholds, perPosition bool) (*Report, error) {
	if ref == nil && th.Any() {
		return nil, fmt.Errorf("verify: thresholds need a reference")
	}
	m, err := Compare(rows, ref, tokens, perPosition)
	if err != nil {
		return nil, err
	}
	r := &Report{Model: model, Reference: reference, Tokens: len(tokens), Metrics: m, Failed: th.Check(m)}
	r.Passed = len(r.Failed) == 0
	return r, nil
}

// SampleText is what a verification reads when given no text: a few
// hundred bytes of plain English prose, enough for stable KL and agreement
// figures.
const SampleText = `The little river ran through the valley, past the mill and the old stone bridge, ` +
	`and on towards the sea. In spring the water rose with the melting snow, and the children ` +
	`of the village would stand on the bridge to watch the branches float by. "It is going home," ` +
	`said the miller's daughter, "like everything that runs downhill." Nobody argued with her.`

// LogitsOptions tune Logits. A nil *LogitsOptions means the defaults.
type LogitsOptions struct {
	// From is the state to start from; nil means the initial state.
	From *engine.Snapshot
	// Progress, if set, is called after each chunk of tokens with the
	// tokens done so far and their total; the tokens are then fed in chunks
	// of ProgressChunk, which gives the CPU engine's logits bit for bit (a
	// GPU engine's passes of other lengths may round otherwise).
	Progress func(done, total int)
}

// ProgressChunk is how many tokens Logits feeds between Progress calls: a
// GPU engine's default pass, so that progress costs it little (a 7B verify
// of 4,096 tokens on an H200 took 2.5–2.7 s a model in chunks of 512,
// 2.3–2.5 s in chunks of 2048).
const ProgressChunk = 2048

// Logits runs tokens through e and returns the logits after every one of
// them, one row per token.
func Logits(ctx context.Context, e engine.Engine, tokens []int, opts *LogitsOptions) ([][]float32, error) {
	if opts == nil {
		opts = &LogitsOptions{}
	}
	if len(tokens) == 0 {
		return nil, errors.New("verify: no tokens")
	}
	st, err := e.NewState()
	if err != nil {
		return nil, err
	}
	if opts.From != nil {
		if err := st.Restore(opts.From); err != nil {
			return nil, err
		}
	}
	chunk := len(tokens)
	if opts.Progress != nil {
		chunk = ProgressChunk
	}
	V := e.Info().Vocab
	flat := make([]float32, len(tokens)*V)
	for done := 0; done < len(tokens); {
		part := tokens[done:min(done+chunk, len(tokens))]
		rows := flat[done*V : (done+len(part))*V : (done+len(part))*V] // Run writes into it
		batch := []engine.Sequence{{Tokens: part, State: st, Output: engine.OutputAll, Logits: rows}}
		if err := e.Run(ctx, batch); err != nil {
			return nil, err
		}
		if &batch[0].Logits[0] != &rows[0] {
			copy(rows, batch[0].Logits)
		}
		done += len(part)
		if opts.Progress != nil {
			opts.Progress(done, len(tokens))
		}
	}
	return logits.Rows(flat, V), nil
}
