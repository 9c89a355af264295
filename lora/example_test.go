package lora_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"math"
	"regexp"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/lora"
)

// f32 makes an in-memory float32 tensor; real code gets its sources from
// format.Open.
func f32(name string, shape []int64, v ...float32) *format.Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	t, err := format.NewTensor(name, format.F32, shape, format.BytesOpener(b))
	if err != nil {
		log.Fatal(err)
	}
	return t
}

func Example() {
	base := &format.Source{Tensors: []*format.Tensor{
		f32("blocks.0.att.key.weight", []int64{2, 2}, 1, 2, 3, 4),
		f32("blocks.0.ffn.key.weight", []int64{2, 2}, 1, 2, 3, 4),
	}}
	// A rank-1 adapter as RWKV-LM's LoRA training names it: B·A = [[1 1] [2 2]]
	// for each module.
	adapter, err := lora.Open(&format.Source{Tensors: []*format.Tensor{
		f32("blocks.0.att.key.lora_A", []int64{1, 2}, 1, 1),
		f32("blocks.0.att.key.lora_B", []int64{2, 1}, 1, 2),
		f32("blocks.0.ffn.key.lora_A", []int64{1, 2}, 1, 1),
		f32("blocks.0.ffn.key.lora_B", []int64{2, 1}, 1, 2),
	}})
	if err != nil {
		log.Fatal(err)
	}
	merged, err := lora.Merge(context.Background(), base, []lora.Blend{{
		Adapter:  adapter,
		Alpha:    1,
		Patterns: []lora.Pattern{{Regexp: regexp.MustCompile(`\.ffn\.`), Alpha: 0.5}},
	}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range merged.Tensors {
		w, err := t.Float32() // computed now, rounded to the base's dtype
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(t.Name, w)
	}
	// Output:
	// blocks.0.att.key.weight [2 3 5 6]
	// blocks.0.ffn.key.weight [1.5 2.5 4 5]
}
