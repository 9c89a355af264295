package generate_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/generate"
	"github.com/rwkvkit/rwkvkit/model"
)

// Load a model, feed it a prompt and stream what it writes next, choosing
// the most likely byte each time (temperature 0).
func Example() {
	ctx := context.Background()
	e, err := model.Load(ctx, "../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth", device.CPU)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	tok, err := model.Tokenizer(e.Info().Vocab, "") // bytes, for this byte-level model
	if err != nil {
		log.Fatal(err)
	}
	g, err := generate.New(e, tok, generate.Sampler{Temperature: 0})
	if err != nil {
		log.Fatal(err)
	}
	prompt := "The cat sat on the"
	if err := g.Feed(ctx, tok.Encode(prompt)); err != nil {
		log.Fatal(err)
	}
	fmt.Print(prompt)
	if _, err := g.Generate(ctx, 24, os.Stdout); err != nil {
		log.Fatal(err)
	}
	fmt.Println()
	// Output: The cat sat on the the the the the the the
}
