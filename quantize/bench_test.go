package quantize_test

import (
	"context"
	"flag"
	"fmt"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
)

var benchMB = flag.Int("quant.mb", 32, "float16 input size in MiB for the quantize benchmarks")

func benchInput(b *testing.B) []uint16 {
	b.Helper()
	return normalF16(*benchMB << 19)
}

// BenchmarkEncode measures the CPU quantizer in bytes of float16 input per
// second, on all cores and on one.
func BenchmarkEncode(b *testing.B) {
	src := benchInput(b)
	for _, kind := range kinds {
		for _, workers := range []int{0, 1} {
			name := fmt.Sprintf("%v/all-cores", kind)
			if workers == 1 {
				name = fmt.Sprintf("%v/one-core", kind)
			}
			b.Run(name, func(b *testing.B) {
				q := quantize.CPU{Workers: workers}
				b.SetBytes(int64(2 * len(src)))
				for b.Loop() {
					if _, err := q.Quantize(context.Background(), kind, "w", src); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDecode measures CPU dequantization in float32 output bytes per second.
func BenchmarkDecode(b *testing.B) {
	src := benchInput(b)
	out := make([]float32, len(src))
	for _, kind := range kinds {
		q, _ := quantize.Encode(kind, src)
		b.Run(kind.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(src)))
			for b.Loop() {
				if err := quantize.Decode(out, kind, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGPUKernel measures the quantization kernels alone on data that is
// already on the GPU (bytes of float16 input per second), next to a plain
// device buffer copy of the same input (bytes copied per second: the copy
// reads and writes that many bytes, the kernel reads them and writes a half
// or a quarter as much).
func BenchmarkGPUKernel(b *testing.B) {
	g := newGPU(b, quantize.GPUOptions{ChunkBytes: int64(*benchMB) << 20, Slots: 1})
	n := g.ChunkElements()
	b.Logf("%s: %d MiB of float16 per operation", g, 2*n>>20)
	if err := quantize.FillInput(g, normalF16(n)); err != nil {
		b.Fatal(err)
	}
	// Warm up: the first dispatch may compile the pipeline, the first copy
	// allocates its destination.
	for _, kind := range kinds {
		if err := quantize.RunKernel(g, kind, n); err != nil {
			b.Fatal(err)
		}
	}
	if err := quantize.CopyInput(g, n); err != nil {
		b.Fatal(err)
	}
	for _, kind := range kinds {
		b.Run(kind.String(), func(b *testing.B) {
			b.SetBytes(int64(2 * n))
			for b.Loop() {
				if err := quantize.RunKernel(g, kind, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("device-copy", func(b *testing.B) {
		b.SetBytes(int64(2 * n))
		for b.Loop() {
			if err := quantize.CopyInput(g, n); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The fixed cost of one operation (recording, submission, wait) that
	// the rates above include: one workgroup's worth of Int8, 4 KiB copied.
	b.Run("fixed/Q8_128", func(b *testing.B) {
		for b.Loop() {
			if err := quantize.RunKernel(g, format.Int8Block, 4096); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fixed/copy", func(b *testing.B) {
		for b.Loop() {
			if err := quantize.CopyInput(g, 2048); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGPUQuantize measures GPU quantization from host memory to host
// memory (upload, kernel, download, overlapped in chunks), in bytes of
// float16 input per second.
func BenchmarkGPUQuantize(b *testing.B) {
	src := benchInput(b)
	g := newGPU(b, quantize.GPUOptions{})
	for _, kind := range kinds {
		if _, err := g.Quantize(context.Background(), kind, "warm-up", src[:1<<20]); err != nil {
			b.Fatal(err)
		}
		b.Run(kind.String(), func(b *testing.B) {
			b.SetBytes(int64(2 * len(src)))
			for b.Loop() {
				if _, err := g.Quantize(context.Background(), kind, "w", src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
