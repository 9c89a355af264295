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

// BenchmarkConvert converts synthetic RWKV-7 checkpoints in bfloat16 with
// the real binary: one of 0.9 GB (C 1024, 24 layers, vocabulary 65536, the
// 0.4B shape) and one of 3.06 GB (the 1.5B shape), durably (the output is
// synced before it is renamed into place) and with --no-sync. Beside them,
// on the same disk, it copies the same file with cp, which does not sync,
// and syncs the copy. It reports each one's throughput, convert's as a
// fraction of cp's and of cp + sync's, and convert's peak resident memory
// (of either run) beside the bound of 2 × the largest tensor + 100 MB.
// RWKVKIT_BENCH_DIR keeps the checkpoints between runs.
func BenchmarkConvert(b *testing.B) {
	for _, m := range []struct {
		name string
		cfg  synth.Config
	}{
		{"0.4B", synth.Config{Layers: 24, Embed: 1024, Vocab: 65536, HeadSize: 64, DecayLoRA: 64, ALoRA: 64, VLoRA: 32, GLoRA: 128}},
		{"1.5B", synth.RWKV7_1_5B},
	} {
		b.Run(m.name, func(b *testing.B) { benchConvert(b, "rwkv7-"+m.name+"-bf16.pth", m.cfg) })
	}
}

func benchConvert(b *testing.B, name string, cfg synth.Config) {
	dir := os.Getenv("RWKVKIT_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	in := filepath.Join(dir, name)
	src, err := synth.RWKV7(cfg, format.BF16, 1)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(in); err != nil {
		writePTH(b, in, src)
	}
	fi, err := os.Stat(in)
	if err != nil {
		b.Fatal(err)
	}
	var largest int64
	for _, t := range src.Tensors {
		largest = max(largest, t.Size())
	}
	out, cp := filepath.Join(dir, "convert-out.st"), filepath.Join(dir, "convert-cp.pth")
	defer os.Remove(out)
	defer os.Remove(cp)
	var convertTime, noSyncTime, cpTime, syncTime time.Duration
	var peak int64
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for range b.N {
		os.Remove(out)
		start := time.Now()
		peak = max(peak, peakOf(b, "convert", in, out))
		convertTime += time.Since(start)
		os.Remove(out)
		timeChild(b, "sync") // the durable run's writeback is not the next run's to wait for
		start = time.Now()
		peak = max(peak, peakOf(b, "convert", "--no-sync", in, out))
		noSyncTime += time.Since(start)
		os.Remove(out)
		timeChild(b, "sync")
		os.Remove(cp)
		cpTime += timeChild(b, "cp", in, cp)
		syncTime += timeChild(b, "sync", cp)
	}
	n := float64(b.N)
	mbps := func(d time.Duration) float64 { return float64(fi.Size()) / (d.Seconds() / n) / 1e6 }
	b.ReportMetric(mbps(convertTime), "convert-MB/s")
	b.ReportMetric(mbps(noSyncTime), "no-sync-MB/s")
	b.ReportMetric(mbps(cpTime), "cp-MB/s")
	b.ReportMetric(mbps(cpTime+syncTime), "cp+sync-MB/s")
	b.ReportMetric(cpTime.Seconds()/convertTime.Seconds(), "convert/cp")
	b.ReportMetric(cpTime.Seconds()/noSyncTime.Seconds(), "no-sync/cp")
	b.ReportMetric((cpTime+syncTime).Seconds()/convertTime.Seconds(), "convert/cp+sync")
	b.ReportMetric(float64(peak)/1e6, "peak-RSS-MB")
	b.ReportMetric(float64(2*largest+100<<20)/1e6, "bound-MB")
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
