package serialize

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// patternReader yields n bytes cycling through a fixed pattern, so a
// benchmark source of hundreds of megabytes costs no memory.
type patternReader struct {
	pat  []byte
	pos  int
	left int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.left)]
	n := 0
	for n < len(b) {
		k := copy(b[n:], p.pat[p.pos:])
		n += k
		p.pos = (p.pos + k) % len(p.pat)
	}
	p.left -= int64(n)
	return n, nil
}

// benchSource is 8 float16 tensors of 64 MiB each: 512 MiB.
func benchSource(b *testing.B) *format.Source {
	pat := make([]byte, 1<<20+13)
	for i := range pat {
		pat[i] = byte(i*131 + i>>9)
	}
	src := &format.Source{}
	for i := range 8 {
		shape := []int64{32768, 1024}
		t, err := format.NewTensor(fmt.Sprintf("blocks.%d.ffn.key.weight", i), format.F16, shape,
			func() (io.ReadCloser, error) {
				return io.NopCloser(&patternReader{pat: pat, pos: i, left: 2 * shape[0] * shape[1]}), nil
			})
		if err != nil {
			b.Fatal(err)
		}
		src.Tensors = append(src.Tensors, t)
	}
	return src
}

func sourceBytes(src *format.Source) int64 {
	var n int64
	for _, t := range src.Tensors {
		n += t.Size()
	}
	return n
}

// BenchmarkWrite writes the 512 MiB source to a file (checksums included).
func BenchmarkWrite(b *testing.B) {
	src := benchSource(b)
	path := filepath.Join(b.TempDir(), "bench.rkv")
	b.SetBytes(sourceBytes(src))
	for b.Loop() {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := Write(f, src, nil); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead opens the 512 MiB artifact and streams every tensor
// through its checksum-verifying reader.
func BenchmarkRead(b *testing.B) {
	src := benchSource(b)
	path := filepath.Join(b.TempDir(), "bench.rkv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := Write(f, src, nil); err != nil {
		b.Fatal(err)
	}
	f.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(sourceBytes(src))
	for b.Loop() {
		got, err := format.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range got.Tensors {
			r, err := t.Open()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
				b.Fatal(err)
			}
		}
		got.Close()
	}
}
