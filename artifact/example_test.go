package artifact_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"

	"github.com/rwkvkit/rwkvkit/artifact"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/lora"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/serialize"
)

// Quantize a model: NF4 in layers 0–5, Int8 in the rest, on the CPU.
func ExampleBuild_quantize() {
	dir, err := os.MkdirTemp("", "artifact-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "model-nf4.rkv")
	spec := &artifact.Spec{
		Base: "../fixtures/rwkv-tiny/st/tiny-rwkv-7v0-834K.st",
		Quantize: []quantize.Rule{
			{Kind: format.Int8Block, Layers: "all"},
			{Kind: format.NF4Block, Layers: "6"}, // layers 0-5; the later rule wins
		},
	}
	if _, err := artifact.Build(context.Background(), out, spec); err != nil {
		log.Fatal(err)
	}
	src, err := format.Open(out)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	for _, name := range []string{"blocks.0.att.key.weight", "blocks.11.ffn.value.weight", "blocks.0.att.w1", "head.weight"} {
		fmt.Println(name, src.Lookup(name).DType)
	}
	// Output:
	// blocks.0.att.key.weight NF4_64
	// blocks.11.ffn.value.weight Q8_128
	// blocks.0.att.w1 F16
	// head.weight F16
}

// Merge a LoRA at half strength (full strength on the attention's keys)
// and record where the artifact came from.
func ExampleBuild_merge() {
	dir, err := os.MkdirTemp("", "artifact-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "merged.rkv")
	spec := &artifact.Spec{
		Base:        "../fixtures/rwkv-tiny/st/tiny-rwkv-7v0-834K.st",
		LoRAs:       []artifact.LoRA{{Path: "../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.demo-lora.st", Alpha: 0.5}},
		Patterns:    []lora.Pattern{{Regexp: regexp.MustCompile(`att\.key`), Alpha: 1}},
		ToolVersion: "example",
	}
	if _, err := artifact.Build(context.Background(), out, spec); err != nil {
		log.Fatal(err)
	}
	h, err := serialize.ReadHeaderFile(out)
	if err != nil {
		log.Fatal(err)
	}
	p := h.Provenance
	fmt.Println(p.Tool, p.ToolVersion)
	fmt.Println("base:", p.Sources[0].Name, p.Sources[0].SHA256[:16])
	fmt.Println("LoRA:", p.LoRAs[0].Name, "alpha", p.LoRAs[0].Alpha, p.LoRAs[0].SHA256[:16])
	// Output:
	// rwkvkit example
	// base: tiny-rwkv-7v0-834K.st ae6a8bda238681be
	// LoRA: tiny-rwkv-7v0-834K.demo-lora.st alpha 0.5 aa900cdaf4980532
}
