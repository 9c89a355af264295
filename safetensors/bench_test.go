package safetensors

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// pattern is an endless reader of non-zero bytes copied from a small
// block, like a reader of a file in the page cache, so the benchmark's
// source costs little memory and time.
type pattern struct{ off int }

var block = func() []byte {
	b := make([]byte, 1<<16)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}()

func (p *pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], block[p.off:])
		p.off = (p.off + c) % len(block)
		n += c
	}
	return n, nil
}

// BenchmarkWrite writes 256 MiB of F16 (16 tensors of 4096×2048) to a file
// through WriteFile, fsync and rename included.
func BenchmarkWrite(b *testing.B) {
	src := &format.Source{}
	for i := range 16 {
		t, err := format.NewTensor(fmt.Sprintf("blocks.%d.weight", i), format.F16, []int64{4096, 2048},
			func() (io.ReadCloser, error) { return io.NopCloser(io.LimitReader(&pattern{}, 4096*2048*2)), nil })
		if err != nil {
			b.Fatal(err)
		}
		src.Tensors = append(src.Tensors, t)
	}
	path := filepath.Join(b.TempDir(), "bench.st")
	b.SetBytes(16 * 4096 * 2048 * 2)
	for b.Loop() {
		if err := WriteFile(context.Background(), path, src, true, nil); err != nil {
			b.Fatal(err)
		}
	}
}
