package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

// logits --int8/--nf4 quantizes at load: on the CPU and on the GPU its
// logits are those of the .rkv that quantize writes with the same flags,
// bit for bit.
func TestQuantizeAtLoad(t *testing.T) {
	dir := t.TempDir()
	model := tiny + "st/tiny-rwkv-7v0-834K.st"
	devices := []string{"cpu"}
	if gputest.Available() {
		devices = append(devices, "gpu")
	}
	for _, flags := range [][]string{{"--int8", "all"}, {"--nf4", "0-5", "--int8", "8"}} {
		rkv := filepath.Join(dir, "q.rkv")
		if _, err := run(t, append([]string{"quantize", model, rkv, "--device", "cpu", "--force"}, flags...)...); err != nil {
			t.Fatal(err)
		}
		for _, dev := range devices {
			fromFile, atLoad := filepath.Join(dir, "file.f32"), filepath.Join(dir, "load.f32")
			if _, err := run(t, "logits", rkv, "--tokens", "34,105,110,32", "--out", fromFile, "--device", dev, "--force"); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"logits", model, "--tokens", "34,105,110,32", "--out", atLoad, "--device", dev, "--force"}, flags...)
			if _, err := run(t, args...); err != nil {
				t.Fatal(err)
			}
			a, _ := os.ReadFile(fromFile)
			b, _ := os.ReadFile(atLoad)
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("%s %v: the logits quantized at load differ from the .rkv's", dev, flags)
			}
		}
	}
}
