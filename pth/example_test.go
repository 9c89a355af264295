package pth_test

import (
	"fmt"
	"log"

	"github.com/rwkvkit/rwkvkit/format"
	_ "github.com/rwkvkit/rwkvkit/pth" // registers the "pth" format with format.Open
)

func Example() {
	src, err := format.Open("../fixtures/pth-edge/views.pth")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	for _, t := range src.Tensors[:3] {
		x, err := t.Float32()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %v %v %.4f\n", t.Name, t.DType, t.Shape, x[:4])
	}
	// Output:
	// transposed F32 [5 4] [0.0000 0.7143 1.4286 2.1429]
	// slice F32 [8] [3.2857 3.4286 3.5714 3.7143]
	// rows F32 [3 4] [6.2857 6.4286 6.5714 6.7143]
}
