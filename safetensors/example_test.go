package safetensors_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log"
	"math"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/safetensors"
)

func Example() {
	// Two tensors made in memory: a float32 vector and a float16 matrix.
	vec := make([]byte, 8)
	binary.LittleEndian.PutUint32(vec[0:], math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(vec[4:], math.Float32bits(-2))
	mat := make([]byte, 2*2*3)
	for i := 0; i < 6; i++ {
		binary.LittleEndian.PutUint16(mat[2*i:], format.F32ToF16(float32(i)))
	}
	a, err := format.NewTensor("head.weight", format.F16, []int64{2, 3}, format.BytesOpener(mat))
	if err != nil {
		log.Fatal(err)
	}
	b, err := format.NewTensor("ln_out.bias", format.F32, []int64{2}, format.BytesOpener(vec))
	if err != nil {
		log.Fatal(err)
	}

	var file bytes.Buffer
	if err := safetensors.Write(&file, &format.Source{Tensors: []*format.Tensor{a, b}}, nil); err != nil {
		log.Fatal(err)
	}

	src, err := safetensors.Open(bytes.NewReader(file.Bytes()), int64(file.Len()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("metadata:", src.Metadata)
	for _, t := range src.Tensors { // F32 before F16: descending alignment
		v, err := t.Float32()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(t.Name, t.DType, t.Shape, v)
	}
	// Output:
	// metadata: map[format:pt]
	// ln_out.bias F32 [2] [1.5 -2]
	// head.weight F16 [2 3] [0 1 2 3 4 5]
}
