package generate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/tokenizer"
)

// A Generator continues one sequence on an engine: [Generator.Feed] runs
// tokens through its state, [Generator.Generate] samples new ones, feeding
// each back, and streams their text.
type Generator struct {
	Engine    engine.Engine
	State     engine.State // the sequence's state, made by Engine
	Tokenizer tokenizer.Tokenizer
	Sampler   Sampler

	logits []float32 // after the last token fed; nil before the first
	stats  Stats
}

// Stats counts what a Generator has done, and how long it took.
type Stats struct {
	Fed          int           // tokens given to Feed (prompts)
	FeedTime     time.Duration // spent in Feed
	Generated    int           // tokens Generate returned
	GenerateTime time.Duration // spent in Generate, feeding its tokens included
}

// FedPerSecond and GeneratedPerSecond are the rates of s's tokens (0 for
// no time spent).
func (s Stats) FedPerSecond() float64       { return perSecond(s.Fed, s.FeedTime) }
func (s Stats) GeneratedPerSecond() float64 { return perSecond(s.Generated, s.GenerateTime) }

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Stats returns what g has done so far.
func (g *Generator) Stats() Stats { return g.stats }

// New returns a Generator for a fresh sequence on e.
func New(e engine.Engine, tok tokenizer.Tokenizer, s Sampler) (*Generator, error) {
	st, err := e.NewState()
	if err != nil {
		return nil, err
	}
	return &Generator{Engine: e, State: st, Tokenizer: tok, Sampler: s}, nil
}

// Feed runs tokens through the state; the logits after the last one are
// what the next Generate samples from.
func (g *Generator) Feed(ctx context.Context, tokens []int) error {
	start := time.Now()
	if err := g.feed(ctx, tokens); err != nil {
		return err
	}
	g.stats.Fed += len(tokens)
	g.stats.FeedTime += time.Since(start)
	return nil
}

func (g *Generator) feed(ctx context.Context, tokens []int) error {
	if len(tokens) == 0 {
		return errors.New("generate: no tokens to feed")
	}
	batch := []engine.Sequence{{Tokens: tokens, State: g.State, Output: engine.OutputLast, Logits: g.logits}}
	if err := g.Engine.Run(ctx, batch); err != nil {
		return err
	}
	g.logits = batch[0].Logits
	return nil
}

// Generate samples up to n tokens, feeding each to the state and writing
// its text to w as soon as it completes a character (a token that decodes
// to part of one is held back; see [tokenizer.StreamDecoder]). With a
// vocabulary tokenizer (the World tokenizer), the end-of-text token stops
// generation and is neither fed nor written. It returns the ids written.
// A sequence must have been fed first.
func (g *Generator) Generate(ctx context.Context, n int, w io.Writer) ([]int, error) {
	if g.logits == nil {
		return nil, errors.New("generate: nothing fed yet")
	}
	_, world := g.Tokenizer.(*tokenizer.Vocab)
	dec := tokenizer.NewStreamDecoder(g.Tokenizer, w)
	var out []int
	start := time.Now()
	defer func() {
		g.stats.Generated += len(out)
		g.stats.GenerateTime += time.Since(start)
	}()
	for range n {
		id := g.Sampler.Sample(g.logits)
		if world && id == tokenizer.EndOfText {
			break
		}
		out = append(out, id)
		if err := dec.WriteToken(id); err != nil && !errors.Is(err, tokenizer.ErrUnknownID) {
			return out, err
		}
		if err := g.feed(ctx, []int{id}); err != nil {
			return out, fmt.Errorf("generate: after %d tokens: %w", len(out), err)
		}
	}
	return out, dec.Flush()
}
