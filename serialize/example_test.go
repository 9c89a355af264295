package serialize_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/serialize"
)

func Example() {
	// A source with one float16 vector and one NF4-quantized 4×64 matrix
	// (128 bytes of codes and 4 float16 block scales).
	vec, _ := format.NewTensor("blocks.0.ln1.weight", format.F16, []int64{4},
		format.BytesOpener([]byte{0, 0x3c, 0, 0x3c, 0, 0x3c, 0, 0x3c}))
	mat, _ := format.NewTensor("blocks.0.att.key.weight", format.NF4Block, []int64{4, 64},
		format.BytesOpener(make([]byte, 128+4*2)))
	src := &format.Source{Tensors: []*format.Tensor{vec, mat}}

	var file bytes.Buffer
	opts := &serialize.Options{Provenance: serialize.Provenance{
		Tool: "rwkvkit", Quantization: serialize.Quantization{NF4: "all", Device: "cpu"}}}
	if err := serialize.Write(&file, src, opts); err != nil {
		log.Fatal(err)
	}

	r := bytes.NewReader(file.Bytes())
	h, err := serialize.ReadHeader(r, r.Size())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("format %d.%d, NF4 layers: %s\n", h.Major, h.Minor, h.Provenance.Quantization.NF4)
	loaded, err := h.Source(r)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range loaded.Tensors {
		b, err := t.Bytes() // checks length and xxhash64
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(t.Name, t.DType, t.Shape, len(b), "bytes")
	}
	// Output:
	// format 1.0, NF4 layers: all
	// blocks.0.ln1.weight F16 [4] 8 bytes
	// blocks.0.att.key.weight NF4_64 [4 64] 136 bytes
}
