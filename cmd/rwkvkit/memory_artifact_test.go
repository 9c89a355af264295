package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/safetensors"
)

// Quantizing and merging never hold the model in memory either: their peak
// resident memory stays within 2 × the largest tensor + 100 MB, on the CPU
// (the GPU's staging buffers are the driver's, not the model's).
func TestArtifactMemoryFollowsLargestTensor(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 370 MB checkpoint")
	}
	src, dir, in := memoryTestPTH(t, format.F16, 9)
	lora := filepath.Join(dir, "lora.st")
	writeRankLoRA(t, lora, memoryTestModel.Layers, int64(memoryTestModel.Embed), 64)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"quantize nf4", []string{"quantize", in, filepath.Join(dir, "q.rkv"), "--nf4", "all", "--device", "cpu"}},
		{"quantize int8", []string{"quantize", in, filepath.Join(dir, "q8.rkv"), "--int8", "all", "--device", "cpu"}},
		{"merge", []string{"merge", in, filepath.Join(dir, "m.rkv"), "--lora", lora, "--device", "cpu"}},
		{"merge nf4", []string{"merge", in, filepath.Join(dir, "mq.rkv"), "--lora", lora, "--nf4", "all", "--device", "cpu"}},
	} {
		checkPeak(t, src, c.name, c.args...)
	}
}

// writeRankLoRA writes rankLoRA(layers, C, r) at path.
func writeRankLoRA(t testing.TB, path string, layers int, C, r int64) {
	t.Helper()
	lora, err := rankLoRA(layers, C, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(context.Background(), path, lora, true, nil); err != nil {
		t.Fatal(err)
	}
}

// rankLoRA returns a LoRA of rank r (float16, web-rwkv names, small random
// factors) for every att and ffn matrix of an RWKV-7 model of the given
// shape.
func rankLoRA(layers int, C, r int64) (*format.Source, error) {
	rng := rand.New(rand.NewPCG(9, 9))
	lora := &format.Source{}
	for l := range layers {
		for _, m := range []struct {
			name    string
			out, in int64
		}{{"att.receptance", C, C}, {"att.key", C, C}, {"att.value", C, C}, {"att.output", C, C}, {"ffn.key", 4 * C, C}, {"ffn.value", C, 4 * C}} {
			p := fmt.Sprintf("blocks.%d.%s", l, m.name)
			for _, f := range []struct {
				suffix string
				rows   int64
			}{{".lora.0", m.in}, {".lora.1", m.out}} {
				vals := make([]byte, 2*f.rows*r)
				for i := range f.rows * r {
					h := format.F32ToF16(float32(rng.NormFloat64() * 0.01))
					vals[2*i], vals[2*i+1] = byte(h), byte(h>>8)
				}
				tn, err := format.NewTensor(p+f.suffix, format.F16, []int64{f.rows, r}, format.BytesOpener(vals))
				if err != nil {
					return nil, err
				}
				lora.Tensors = append(lora.Tensors, tn)
			}
		}
	}
	return lora, nil
}
