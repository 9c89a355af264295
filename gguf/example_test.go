package gguf_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gguf"
)

// Write a downloaded .pth as the GGUF llama.cpp runs, and read it back in
// web-rwkv's names.
func Example() {
	src, err := format.Open("../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	var buf bytes.Buffer
	if err := gguf.Write(&buf, src, &gguf.Options{Type: gguf.TypeQ8_0}); err != nil {
		log.Fatal(err)
	}

	f, err := gguf.ReadFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		log.Fatal(err)
	}
	key := f.Tensors[0]
	fmt.Println(f.Architecture(), len(f.Tensors), "tensors;", key.Name, key.Type, key.Dims)

	back, err := gguf.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		log.Fatal(err)
	}
	emb := back.Lookup("emb.weight")
	fmt.Println(emb.Name, emb.DType, emb.Shape)
	// Output:
	// rwkv7 342 tensors; token_embd.weight Q8_0 [64 256]
	// emb.weight F32 [256 64]
}
