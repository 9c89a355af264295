package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/tokenizer"
	"github.com/rwkvkit/rwkvkit/verify"
)

// Quantizing each tiny model (Int8, NF4 or SF4 in all layers) keeps it
// computing nearly the same thing as its float model on 352 bytes of
// English, and Int8 stays much closer than NF4. The bounds are about twice
// the values measured (recorded in BENCHMARKS.md), so a regression in either
// scheme fails.
func TestQuantizedQuality(t *testing.T) {
	ids := tokenizer.Bytes{}.Encode(verify.SampleText)
	if len(ids) < 200 {
		t.Fatalf("text of %d bytes, want at least 200", len(ids))
	}
	bounds := map[string]struct{ int8KL, nf4KL, int8Top1, nf4Top1, sf4KL, sf4Top1 float64 }{
		"tiny-rwkv-4v0-660K": {2e-5, 0.006, 0.99, 0.90, 0.007, 0.92},
		"tiny-rwkv-5v1-730K": {6e-4, 0.16, 0.98, 0.75, 0.2, 0.72},
		"tiny-rwkv-5v2-730K": {5e-4, 0.11, 0.98, 0.80, 0.14, 0.80},
		"tiny-rwkv-6v0-1m":   {4e-5, 0.03, 0.99, 0.97, 0.05, 0.97},
		"tiny-rwkv-7v0-834K": {2e-7, 4e-5, 0.99, 0.99, 4e-5, 0.98},
	}
	dir := t.TempDir()
	for _, m := range tinyModels {
		t.Run(m, func(t *testing.T) {
			ref, err := loadModel(context.Background(), tiny+m+".pth", device.CPU, nil, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			refRows, err := verify.Logits(context.Background(), ref, ids, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]verify.Metrics{}
			for _, kind := range []string{"int8", "nf4", "sf4"} {
				out := filepath.Join(dir, m+"-"+kind+".rkv")
				if _, err := run(t, "quantize", tiny+m+".pth", out, "--"+kind, "all", "--device", "cpu"); err != nil {
					t.Fatal(err)
				}
				q, err := loadModel(context.Background(), out, device.CPU, nil, io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := verify.Logits(context.Background(), q, ids, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got[kind], err = verify.Compare(rows, refRows, ids, false); err != nil {
					t.Fatal(err)
				}
			}
			i8, n4, s4, b := got["int8"], got["nf4"], got["sf4"], bounds[m]
			t.Logf("| %s | %.3f | %.3g | %.1f%% | %.3g | %.1f%% | %.3g | %.1f%% |", m, i8.RefPerplexity, i8.MeanKL, i8.Top1Percent, n4.MeanKL, n4.Top1Percent, s4.MeanKL, s4.Top1Percent)
			if !(i8.MeanKL > 0 && i8.MeanKL < b.int8KL && i8.Top1Percent >= 100*b.int8Top1) {
				t.Errorf("Int8: mean KL %.3g (bound %g), top-1 %.3f (bound %g)", i8.MeanKL, b.int8KL, i8.Top1Percent/100, b.int8Top1)
			}
			if !(n4.MeanKL < b.nf4KL && n4.Top1Percent >= 100*b.nf4Top1) {
				t.Errorf("NF4: mean KL %.3g (bound %g), top-1 %.3f (bound %g)", n4.MeanKL, b.nf4KL, n4.Top1Percent/100, b.nf4Top1)
			}
			if !(s4.MeanKL < b.sf4KL && s4.Top1Percent >= 100*b.sf4Top1) {
				t.Errorf("SF4: mean KL %.3g (bound %g), top-1 %.3f (bound %g)", s4.MeanKL, b.sf4KL, s4.Top1Percent/100, b.sf4Top1)
			}
			if !(n4.MeanKL > 5*i8.MeanKL) {
				t.Errorf("Int8 is not much closer than NF4: KL %.3g vs %.3g", i8.MeanKL, n4.MeanKL)
			}
		})
	}
}
