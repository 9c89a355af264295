package lora

import (
	"context"
	"math/rand/v2"
	"testing"
)

// benchMerge merges a rank-64 adapter into one 2048×2048 float16 matrix:
// read, widen, add the product, round back.
func benchMerge(b *testing.B, opts *Options) {
	const n, r = 2048, 64
	rng := rand.New(rand.NewPCG(1, 1))
	base := source(tensor(b, "blocks.0.att.key.weight", F16, []int64{n, n}, randVals(rng, n*n, F16)))
	a := mustOpen(b,
		tensor(b, "blocks.0.att.key.lora.0", F16, []int64{n, r}, randVals(rng, n*r, F16)),
		tensor(b, "blocks.0.att.key.lora.1", F16, []int64{n, r}, randVals(rng, n*r, F16)))
	m, err := Merge(context.Background(), base, []Blend{{Adapter: a, Alpha: 1}}, opts)
	if err != nil {
		b.Fatal(err)
	}
	t := m.Tensors[0]
	b.SetBytes(t.Size())
	b.ResetTimer()
	for b.Loop() {
		if _, err := t.Bytes(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2*n*n*r)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkMerge2048Rank64(b *testing.B) {
	b.Run("CPU", func(b *testing.B) { benchMerge(b, nil) })
	b.Run("GPU", func(b *testing.B) { benchMerge(b, &Options{Backend: newGPU(b)}) })
}

// BenchmarkAddLowRank measures the product alone, float32 in and out
// (for the GPU: upload, kernel, download).
func BenchmarkAddLowRank(b *testing.B) {
	const n, r = 2048, 64
	rng := rand.New(rand.NewPCG(2, 2))
	w, p, q := randVals(rng, n*n, F32), randVals(rng, n*r, F32), randVals(rng, n*r, F32)
	run := func(b *testing.B, be Backend) {
		b.SetBytes(4 * n * n)
		for b.Loop() {
			if err := be.AddLowRank(w, n, n, r, p, q, 1e-3); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(2*n*n*r)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	b.Run("CPU", func(b *testing.B) { run(b, CPU{}) })
	b.Run("GPU", func(b *testing.B) { run(b, newGPU(b)) })
}
