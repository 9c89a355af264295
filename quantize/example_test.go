package quantize_test

import (
	"context"
	"fmt"
	"log"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
)

func Example() {
	// Weights as float16 bits: one block of four values.
	w := []uint16{
		format.F32ToF16(-1), format.F32ToF16(0.5),
		format.F32ToF16(0), format.F32ToF16(1),
	}
	q, err := quantize.CPU{}.Quantize(context.Background(), format.NF4Block, "w", w)
	if err != nil {
		log.Fatal(err)
	}
	// Two bytes of 4-bit codes, then the block's float16 absmax.
	fmt.Printf("% x\n", q)

	back := make([]float32, len(w))
	if err := quantize.Decode(back, format.NF4Block, q); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.4f\n", back)
	// Output:
	// c0 f7 00 3c
	// [-1.0000 0.4407 0.0000 1.0000]
}

func ExampleNewPlan() {
	// Int8 for every layer, NF4 for layers 8-11 (the later rule wins).
	plan, err := quantize.NewPlan(12,
		quantize.Rule{Kind: format.Int8Block, Layers: "all"},
		quantize.Rule{Kind: format.NF4Block, Layers: "8-11"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(plan)
	fmt.Println(plan.Kind("blocks.9.att.key.weight"))
	fmt.Println(plan.Kind("emb.weight"))
	// Output:
	// Int8 layers 0-7; NF4 layers 8-11
	// NF4_64 true
	// INVALID false
}
