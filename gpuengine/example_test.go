package gpuengine_test

import (
	"context"
	"fmt"
	"log"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/gpuengine"
	_ "github.com/rwkvkit/rwkvkit/safetensors"
)

// Load a model on the GPU, feed a prompt in one call and take the logits
// of its last token.
func Example() {
	d, err := gpu.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	src, err := format.Open("model.st")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	e, err := gpuengine.Load(context.Background(), d, src, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewState()
	if err != nil {
		log.Fatal(err)
	}
	batch := []engine.Sequence{{Tokens: []int{34, 105, 110}, State: s, Output: engine.OutputLast}}
	if err := e.Run(context.Background(), batch); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(batch[0].Logits) == e.Info().Vocab)
}
