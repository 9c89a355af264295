package generate_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/generate"
	"github.com/rwkvkit/rwkvkit/internal/synth"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/runner"
	"github.com/rwkvkit/rwkvkit/tokenizer"
)

const tinyV7 = "../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth"

func load(t *testing.T, src *format.Source) engine.Engine {
	t.Helper()
	e, err := runner.Load(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func tiny(t *testing.T) engine.Engine {
	t.Helper()
	src, err := model.Open(tinyV7)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return load(t, src)
}

// Greedy generation after `"in` starts with a space, the byte the
// reference logits of the fixture rank first after that prompt; and the
// text streamed is the bytes of the ids returned.
func TestGreedyFollowsReference(t *testing.T) {
	g, err := generate.New(tiny(t), tokenizer.Bytes{}, generate.Sampler{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := g.Feed(ctx, tokenizer.Bytes{}.Encode(`"in`)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ids, err := g.Generate(ctx, 16, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 16 || ids[0] != ' ' {
		t.Fatalf("ids %v: want 16, starting with a space", ids)
	}
	if want, _ := (tokenizer.Bytes{}).Decode(ids); !bytes.Equal(out.Bytes(), want) {
		t.Errorf("streamed %q, the ids decode to %q", out.Bytes(), want)
	}
}

// Feeding a prompt in two parts continues the same state as feeding it at
// once (to the engine's rounding between batch shapes), so the same seed
// samples the same text; another seed samples other text.
func TestFeedContinuesTheState(t *testing.T) {
	e := tiny(t)
	ctx := context.Background()
	gen := func(seed uint64, parts ...string) []int {
		g, err := generate.New(e, tokenizer.Bytes{}, generate.Sampler{Temperature: 0.8, TopP: 0.9, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			if err := g.Feed(ctx, tokenizer.Bytes{}.Encode(p)); err != nil {
				t.Fatal(err)
			}
		}
		ids, err := g.Generate(ctx, 40, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	whole, split := gen(7, "The river ran "), gen(7, "The river", " ran ")
	if !slices.Equal(whole, split) {
		t.Errorf("split prompt gave %v, whole prompt %v", split, whole)
	}
	if slices.Equal(whole, gen(8, "The river ran ")) {
		t.Error("seeds 7 and 8 gave the same 40 tokens")
	}
}

// With the World tokenizer, end-of-text (id 0) ends the generation and is
// not written; with bytes, id 0 is a byte like any other. A model whose
// head is all zeros gives equal logits, and greedy sampling takes the
// lowest id, 0.
func TestEndOfText(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		src   func() (*format.Source, error)
		tok   tokenizer.Tokenizer
		wantN int
	}{
		{"World", func() (*format.Source, error) {
			return synth.RWKV7(synth.Config{Layers: 1, Embed: 64, Vocab: 65536, HeadSize: 64, DecayLoRA: 8, ALoRA: 8, VLoRA: 8, GLoRA: 8}, format.F16, 3)
		}, tokenizer.World(), 0},
		{"bytes", func() (*format.Source, error) { return model.Open(tinyV7) }, tokenizer.Bytes{}, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, err := c.src()
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			zeroHead(t, src)
			g, err := generate.New(load(t, src), c.tok, generate.Sampler{})
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Feed(ctx, []int{65}); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			ids, err := g.Generate(ctx, 5, &out)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != c.wantN || out.Len() != c.wantN || slices.ContainsFunc(ids, func(id int) bool { return id != 0 }) {
				t.Errorf("ids %v, text %q; want %d zeros", ids, out.String(), c.wantN)
			}
		})
	}
}

// zeroHead replaces the output matrix of src with zeros.
func zeroHead(t *testing.T, src *format.Source) {
	t.Helper()
	for i, tn := range src.Tensors {
		if tn.Name == "head.weight" {
			z, err := format.NewTensor(tn.Name, tn.DType, tn.Shape, format.BytesOpener(make([]byte, tn.Size())))
			if err != nil {
				t.Fatal(err)
			}
			src.Tensors[i] = z
			return
		}
	}
	t.Fatal("no head.weight")
}

func TestGenerateNeedsFeed(t *testing.T) {
	g, err := generate.New(tiny(t), tokenizer.Bytes{}, generate.Sampler{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Generate(context.Background(), 3, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "nothing fed") {
		t.Errorf("Generate before Feed: %v", err)
	}
	if err := g.Feed(context.Background(), nil); err == nil {
		t.Error("Feed of no tokens succeeded")
	}
}

// Stats counts the prompt's tokens apart from the generated ones (whose
// own feeding is Generate's time, not Feed's), over every call.
func TestStats(t *testing.T) {
	e := tiny(t)
	ctx := context.Background()
	g, err := generate.New(e, tokenizer.Bytes{}, generate.Sampler{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if s := g.Stats(); s != (generate.Stats{}) || s.FedPerSecond() != 0 {
		t.Fatalf("a new generator's stats: %+v", s)
	}
	for _, p := range []string{"The river", " ran "} {
		if err := g.Feed(ctx, tokenizer.Bytes{}.Encode(p)); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := g.Generate(ctx, 12, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	s := g.Stats()
	if s.Fed != len("The river ran ") || s.Generated != len(ids) || len(ids) != 12 || s.FeedTime <= 0 || s.GenerateTime <= 0 {
		t.Errorf("stats %+v after 14 tokens fed and %d generated", s, len(ids))
	}
	if got, want := s.GeneratedPerSecond(), float64(s.Generated)/s.GenerateTime.Seconds(); got != want {
		t.Errorf("GeneratedPerSecond %v, want %v", got, want)
	}
}
