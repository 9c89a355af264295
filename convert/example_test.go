package convert_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rwkvkit/rwkvkit/convert"
)

// Convert a PyTorch checkpoint to the .st file web-rwkv loads; the result
// is the file web-rwkv's own converter writes, byte for byte.
func Example() {
	dir, err := os.MkdirTemp("", "convert-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "model.st")
	res, err := convert.File(context.Background(), "../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth", out, nil)
	if err != nil {
		log.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want, _ := os.ReadFile("../fixtures/rwkv-tiny/st/tiny-rwkv-7v0-834K.st")
	fmt.Printf("%d tensors; the same bytes as web-rwkv's converter: %v\n", res.Tensors, bytes.Equal(got, want))
	// Output: 399 tensors; the same bytes as web-rwkv's converter: true
}
