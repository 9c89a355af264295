package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
	"github.com/rwkvkit/rwkvkit/tokenizer"
)

const tinyDir = "../fixtures/rwkv-tiny/"

// Every tiny model, in every format, loads into an engine that describes it
// as the fixture index does.
func TestLoad(t *testing.T) {
	for _, c := range []struct {
		file          string
		layers, embed int
		version       string
	}{
		{"tiny-rwkv-4v0-660K.pth", 4, 128, "4"},
		{"tiny-rwkv-6v0-1m.pth", 12, 64, "6"},
		{"st/tiny-rwkv-7v0-834K.st", 12, 64, "7"},
	} {
		e, err := Load(context.Background(), tinyDir+c.file, device.CPU)
		if err != nil {
			t.Fatal(err)
		}
		i := e.Info()
		if string(i.Version) != c.version || i.Layers != c.layers || i.Embed != c.embed || i.Vocab != 256 {
			t.Errorf("%s: %+v", c.file, i)
		}
		e.Close()
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	lora := tinyDir + "tiny-rwkv-7v0-834K.demo-lora.st"
	if _, err := Load(ctx, lora, device.CPU); err == nil || !strings.Contains(err.Error(), lora) {
		t.Errorf("a LoRA loaded as a model: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "none.pth")
	if _, err := Load(ctx, missing, device.CPU); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(ctx, tinyDir+"tiny-rwkv-7v0-834K.pth", "tpu"); err == nil || !strings.Contains(err.Error(), `"tpu"`) {
		t.Errorf("unknown device: %v", err)
	}
}

func TestTokenizer(t *testing.T) {
	world := tokenizer.World().VocabSize()
	for _, c := range []struct {
		vocab int
		path  string
		want  string // %T of the tokenizer, or "" for an error
	}{
		{256, "", "tokenizer.Bytes"},
		{65536, "", "*tokenizer.Vocab"},
		{world, "", "*tokenizer.Vocab"},
		{world - 1, "", ""},
		{1000, "", ""},
		{1000, "../fixtures/vocab/rwkv_vocab_v20230424.txt", "*tokenizer.Vocab"},
	} {
		tok, err := Tokenizer(c.vocab, c.path)
		switch {
		case c.want == "" && !errors.Is(err, ErrNoTokenizer):
			t.Errorf("vocabulary %d: %v, want ErrNoTokenizer", c.vocab, err)
		case c.want != "" && (err != nil || typeName(tok) != c.want):
			t.Errorf("vocabulary %d, file %q: %T, %v; want %s", c.vocab, c.path, tok, err, c.want)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case tokenizer.Bytes:
		return "tokenizer.Bytes"
	case *tokenizer.Vocab:
		return "*tokenizer.Vocab"
	}
	return "?"
}

// --device gpu runs every tiny model, of every version, on the GPU engine,
// which gives the CPU engine's logits.
func TestLoadGPU(t *testing.T) {
	gputest.Device(t) // skips when there is no adapter and none is required
	ctx := context.Background()
	for _, name := range []string{"tiny-rwkv-4v0-660K", "tiny-rwkv-5v1-730K", "tiny-rwkv-5v2-730K", "tiny-rwkv-6v0-1m", "tiny-rwkv-7v0-834K"} {
		path := tinyDir + "st/" + name + ".st"
		g, err := Load(ctx, path, device.GPU)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if s, ok := g.(fmt.Stringer); !ok || !strings.HasPrefix(s.String(), "GPU ") {
			t.Errorf("%s: the engine does not say it runs on the GPU", name)
		}
		c, err := Load(ctx, path, device.CPU)
		if err != nil {
			t.Fatal(err)
		}
		var rows [2][]float32
		for i, e := range []engine.Engine{g, c} {
			s, err := e.NewState()
			if err != nil {
				t.Fatal(err)
			}
			b := []engine.Sequence{{Tokens: []int{34, 105, 110}, State: s, Output: engine.OutputAll}}
			if err := e.Run(ctx, b); err != nil {
				t.Fatal(err)
			}
			rows[i] = b[0].Logits
		}
		for i := range rows[1] {
			if d := math.Abs(float64(rows[0][i] - rows[1][i])); d > 1e-3 {
				t.Fatalf("%s: logit %d: GPU %v, CPU %v", name, i, rows[0][i], rows[1][i])
			}
		}
	}
}
