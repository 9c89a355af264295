package format_test

import (
	"fmt"
	"log"

	"github.com/rwkvkit/rwkvkit/format"
	_ "github.com/rwkvkit/rwkvkit/pth" // registers .pth checkpoints with format.Open
)

// Open recognises a file by its first bytes; Detect reads the model's
// version and dimensions from its tensor names and shapes; WebRWKV and
// CastF16 make web-rwkv's layout, lazily.
func Example() {
	src, err := format.Open("../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	info, err := format.Detect(src)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: RWKV v%s, %d layers, embedding %d, %s layout\n", src.Format, info.Version, info.Layers, info.Embed, info.Layout)

	web, err := format.WebRWKV(src)
	if err != nil {
		log.Fatal(err)
	}
	f16, err := format.CastF16(web)
	if err != nil {
		log.Fatal(err)
	}
	w1 := f16.Lookup("blocks.0.att.w1")
	fmt.Println(w1.Name, w1.DType, w1.Shape)
	// Output:
	// pth: RWKV v7, 12 layers, embedding 64, RWKV-LM layout
	// blocks.0.att.w1 F16 [32 64]
}
