package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A layer count above the model's is an error naming it, for a count as
// for a range, and nothing is written.
func TestLayerSpecBeyondModel(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "q.rkv")
	for _, spec := range [][]string{{"--nf4", "99"}, {"--int8", "0-99"}, {"--int8", "all", "--nf4", "13"}} {
		args := append([]string{"quantize", tiny + "tiny-rwkv-7v0-834K.pth", out, "--device", "cpu"}, spec...)
		_, stderr, code := rwkvkit(t, args...)
		if code != 2 || !strings.Contains(stderr, "the model has 12") || !strings.Contains(stderr, spec[len(spec)-1]) {
			t.Errorf("%v: exit %d, %q; want 2 and the counts", spec, code, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: wrote %s", spec, out)
		}
	}
	if _, err := run(t, "quantize", tiny+"tiny-rwkv-7v0-834K.pth", out, "--nf4", "12", "--device", "cpu"); err != nil {
		t.Errorf("--nf4 12 on a 12-layer model: %v", err)
	}
}
