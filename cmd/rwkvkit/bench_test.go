package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

// BenchmarkConvert converts a synthetic RWKV-7 checkpoint of the 1.5B shape
// (C 2048, 24 layers, vocabulary 65536, bfloat16, about 3 GB) with the real
// binary and reports throughput and the child's peak resident memory, beside
// cp of the same file on the same disk.
func BenchmarkConvert(b *testing.B) {
	dir := b.TempDir()
	in := filepath.Join(dir, "rwkv7-1.5b-bf16.pth")
	src, err := synth.RWKV7(synth.RWKV7_1_5B, format.BF16, 1)
	if err != nil {
		b.Fatal(err)
	}
	writePTH(b, in, src)
	fi, _ := os.Stat(in)
	var largest int64
	for _, t := range src.Tensors {
		largest = max(largest, t.Size())
	}
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := filepath.Join(dir, "out.st")
		os.Remove(out)
		start := time.Now()
		rss := peakOf(b, "convert", in, out)
		elapsed := time.Since(start)
		b.ReportMetric(float64(fi.Size())/elapsed.Seconds()/1e6, "convert-MB/s")
		b.ReportMetric(float64(rss)/1e6, "convert-peak-RSS-MB")
		os.Remove(filepath.Join(dir, "cp.pth"))
		elapsed = timeChild(b, "cp", in, filepath.Join(dir, "cp.pth"))
		b.ReportMetric(float64(fi.Size())/elapsed.Seconds()/1e6, "cp-MB/s")
	}
	b.ReportMetric(float64(largest)/1e6, "largest-tensor-MB")
}

func timeChild(b *testing.B, name string, args ...string) time.Duration {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
