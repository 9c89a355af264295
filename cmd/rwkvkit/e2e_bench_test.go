package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rwkvkit/rwkvkit/convert"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
	"github.com/rwkvkit/rwkvkit/safetensors"
)

// The end-to-end benchmarks run the real command in a child process on the
// synthetic RWKV-7 "1.5B" (C 2048, 24 layers, vocabulary 65536) in float16,
// file to file, and report seconds and the child's peak resident memory;
// quantize and merge fail above 2 × the largest tensor + 100 MB (a check
// too slow for the tests on a small machine: 3 GB through each command).
// RWKVKIT_BENCH_DIR keeps the generated inputs between runs.

var benchFiles struct {
	once sync.Once
	dir  string
	err  error
}

// benchInputs writes (once) the synthetic model as .st and .pth, its .rkv,
// and a rank-64 LoRA for every att and ffn matrix.
func benchInputs(b *testing.B) string {
	b.Helper()
	benchFiles.once.Do(func() {
		dir := os.Getenv("RWKVKIT_BENCH_DIR")
		if dir == "" {
			dir, benchFiles.err = os.MkdirTemp("", "rwkvkit-bench-")
			if benchFiles.err != nil {
				return
			}
		}
		benchFiles.dir = dir
		if benchFiles.err = os.MkdirAll(dir, 0o755); benchFiles.err == nil {
			benchFiles.err = writeBenchInputs(dir)
		}
	})
	if benchFiles.err != nil {
		b.Fatal(benchFiles.err)
	}
	return benchFiles.dir
}

func writeBenchInputs(dir string) error {
	ctx := context.Background()
	st := filepath.Join(dir, "rwkv7-1.5b.st")
	if _, err := os.Stat(st); err == nil {
		return nil
	}
	src, err := synth.RWKV7(synth.RWKV7_1_5B, format.F16, 1)
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "rwkv7-1.5b.pth"))
	if err != nil {
		return err
	}
	if err := synth.WritePTH(f, src); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if _, err := convert.File(ctx, filepath.Join(dir, "rwkv7-1.5b.pth"), st, &convert.Options{Force: true}); err != nil {
		return err
	}
	if code := runMainChild("quantize", st, filepath.Join(dir, "rwkv7-1.5b.rkv"), "--int8", "0", "--device", "cpu", "--force"); code != 0 {
		return fmt.Errorf("writing the .rkv: exit %d", code)
	}
	if code := runMainChild("quantize", st, filepath.Join(dir, "rwkv7-1.5b-nf4.rkv"), "--nf4", "all", "--device", "cpu", "--force"); code != 0 {
		return fmt.Errorf("writing the NF4 .rkv: exit %d", code)
	}
	// A rank-64 LoRA on every att and ffn matrix.
	lora, err := rankLoRA(synth.RWKV7_1_5B.Layers, int64(synth.RWKV7_1_5B.Embed), 64)
	if err != nil {
		return err
	}
	return safetensors.WriteFile(ctx, filepath.Join(dir, "lora-r64.st"), lora, true, nil)
}

// runMainChild runs the command in this process.
func runMainChild(args ...string) int {
	cmd := newRoot()
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// benchChild times child runs of the command, reports them and returns the
// highest peak resident memory.
func benchChild(b *testing.B, args ...string) int64 {
	b.Helper()
	var total time.Duration
	var peak int64
	for range b.N {
		start := time.Now()
		peak = max(peak, peakOf(b, args...))
		total += time.Since(start)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/op")
	b.ReportMetric(float64(peak)/1e6, "peak-RSS-MB")
	return peak
}

// benchBounded is benchChild for a command on the 1.5B model whose memory
// is to follow its largest tensor: it reports the bound, 2 × that tensor +
// 100 MB, and fails above it.
func benchBounded(b *testing.B, args ...string) {
	b.Helper()
	src, err := synth.RWKV7(synth.RWKV7_1_5B, format.F16, 1)
	if err != nil {
		b.Fatal(err)
	}
	_, _, bound := memoryBound(b, src)
	b.ReportMetric(float64(bound)/1e6, "bound-MB")
	if peak := benchChild(b, args...); peak > bound {
		b.Errorf("peak RSS %d MB exceeds 2 × largest tensor + 100 MB = %d MB", peak>>20, bound>>20)
	}
}

func BenchmarkQuantizeFile(b *testing.B) {
	dir := benchInputs(b)
	st := filepath.Join(dir, "rwkv7-1.5b.st")
	fi, _ := os.Stat(st)
	for _, dev := range []string{"cpu", "gpu"} {
		for _, kind := range []string{"int8", "nf4"} {
			b.Run(dev+"/"+kind, func(b *testing.B) {
				b.SetBytes(fi.Size())
				benchBounded(b, "quantize", st, filepath.Join(dir, "out.rkv"), "--"+kind, "all", "--device", dev, "--force")
			})
		}
	}
}

// BenchmarkLoad loads the model from each file kind and feeds it one token:
// the same float16 weights from .rkv (checksummed), .st and .pth, and the
// NF4-quantized model from its .rkv.
func BenchmarkLoad(b *testing.B) {
	dir := benchInputs(b)
	for _, f := range []string{"rwkv7-1.5b.rkv", "rwkv7-1.5b.st", "rwkv7-1.5b.pth", "rwkv7-1.5b-nf4.rkv"} {
		b.Run(strings.TrimPrefix(f, "rwkv7-1.5b"), func(b *testing.B) {
			benchChild(b, "run", filepath.Join(dir, f), "--prompt", "a", "-n", "0")
		})
	}
}

func BenchmarkMergeFile(b *testing.B) {
	dir := benchInputs(b)
	for _, dev := range []string{"cpu", "gpu"} {
		b.Run(dev, func(b *testing.B) {
			benchBounded(b, "merge", filepath.Join(dir, "rwkv7-1.5b.st"), filepath.Join(dir, "merged.rkv"),
				"--lora", filepath.Join(dir, "lora-r64.st"), "--device", dev, "--force")
		})
	}
}
