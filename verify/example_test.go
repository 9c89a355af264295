package verify_test

import (
	"context"
	"fmt"
	"log"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/tokenizer"
	"github.com/rwkvkit/rwkvkit/verify"
)

// Check that the float16 conversion of a model still computes what the
// original checkpoint does: mean KL at most 1e-6, top-1 agreement at least
// 99%.
func Example() {
	ctx := context.Background()
	ids := tokenizer.Bytes{}.Encode(verify.SampleText)
	logitsOf := func(path string) [][]float32 {
		e, err := model.Load(ctx, path, device.CPU)
		if err != nil {
			log.Fatal(err)
		}
		defer e.Close()
		rows, err := verify.Logits(ctx, e, ids, nil)
		if err != nil {
			log.Fatal(err)
		}
		return rows
	}
	ref := logitsOf("../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth")
	got := logitsOf("../fixtures/rwkv-tiny/st/tiny-rwkv-7v0-834K.st")
	maxKL, minTop1 := 1e-6, 99.0
	r, err := verify.NewReport("model.st", "model.pth", ids, got, ref, verify.Thresholds{MaxMeanKL: &maxKL, MinTop1Percent: &minTop1}, false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d tokens, perplexity %.2f (reference %.2f), passed: %v\n", r.Tokens, r.Metrics.Perplexity, r.Metrics.RefPerplexity, r.Passed)
	// Output: 352 tokens, perplexity 33.32 (reference 33.32), passed: true
}

// Compare an NF4 quantization of a model with its float16 original, the
// quantized model's logits scored a chunk of positions at a time as it
// runs, never held whole (rwkvkit verify reads the other model's rows back
// from a temporary file the same way, so that it holds neither).
func ExampleComparer() {
	ctx := context.Background()
	ids := tokenizer.Bytes{}.Encode(verify.SampleText)
	load := func(path string) engine.Engine {
		e, err := model.Load(ctx, path, device.CPU)
		if err != nil {
			log.Fatal(err)
		}
		return e
	}
	ref := load("../fixtures/rwkv-tiny/st/tiny-rwkv-7v0-834K.st")
	refRows, err := verify.Logits(ctx, ref, ids, nil)
	ref.Close()
	if err != nil {
		log.Fatal(err)
	}
	e, err := model.LoadQuantized(ctx, "../fixtures/rwkv-tiny/st/tiny-rwkv-7v0-834K.st", device.CPU,
		[]quantize.Rule{{Kind: format.NF4Block, Layers: "all"}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	c := verify.NewComparer(ids, true, false)
	err = verify.Stream(ctx, e, ids, nil, func(start int, rows [][]float32) error {
		return c.Add(rows, refRows[start:start+len(rows)])
	})
	if err != nil {
		log.Fatal(err)
	}
	m, err := c.Metrics()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d positions, top-1 agreement above 90%%: %v\n", m.Positions, m.Top1Percent > 90)
	// Output: 352 positions, top-1 agreement above 90%: true
}
