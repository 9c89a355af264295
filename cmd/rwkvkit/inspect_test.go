package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/inspect"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

// inspect shows the file's size, a dtype summary and the parameter count
// on top; --tensors=false leaves out the tensor list; a LoRA is recognised
// as one, with its rank and targets.
func TestInspectSummary(t *testing.T) {
	path := tiny + "st/tiny-rwkv-7v0-834K.st"
	fi, _ := os.Stat(path)
	out, err := run(t, "inspect", "--tensors=false", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{fmt.Sprintf("(%.2f MB)", float64(fi.Size())/1e6), "parameters: 829888 (829.9K)", "dtype:      F16     399 tensors, 829.9K parameters, 1.66 MB"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "blocks.0.att.key.weight") || strings.Contains(out, "tensors:") {
		t.Errorf("--tensors=false listed the tensors:\n%s", out)
	}
	out, err = run(t, "inspect", demoLoRA)
	if err != nil || strings.Contains(out, "not an RWKV model") ||
		!strings.Contains(out, "LoRA adapter (web-rwkv names): 24 low-rank pairs of rank 4") ||
		!strings.Contains(out, "changes:    att.key (layers 0-11), att.value (layers 0-11)") {
		t.Errorf("LoRA (%v):\n%s", err, out)
	}
	// A GGUF: its ggml types as stored, then what they are read as.
	gg := filepath.Join(t.TempDir(), "m.gguf")
	if _, err := run(t, "convert", tiny+"tiny-rwkv-6v0-1m.pth", gg, "--type", "q8_0"); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "inspect", "--tensors=false", gg)
	if err != nil || !strings.Contains(out, "stored:     Q8_0    98 tensors") || !strings.Contains(out, "read as:    F32     342 tensors") || strings.Contains(out, "dtype:") {
		t.Errorf("GGUF (%v):\n%s", err, out)
	}
}

// inspect --json is data in snake_case: sizes in bytes, a dtype summary, a
// LoRA's targets.
func TestInspectJSON(t *testing.T) {
	out, err := runStdout(t, "inspect", "--json", "--tensors=false", demoLoRA)
	if err != nil {
		t.Fatal(err)
	}
	var r inspect.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Contents != "lora" || r.LoRA.Pairs != 24 || len(r.LoRA.Targets) != 2 || len(r.LoRA.Targets[0].Layers) != 12 || r.SizeBytes != 28760 || r.Parameters != 12288 || r.Tensors != nil {
		t.Errorf("%+v", r)
	}
	for _, key := range []string{`"size_bytes"`, `"contents"`, `"dtypes"`, `"parameters"`} {
		if !strings.Contains(out, key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

// inspect --verify reads every payload of an artifact: a good one passes,
// a changed byte fails (exit 2) naming the tensor, and a format without
// checksums is refused.
func TestInspectVerify(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "q.rkv")
	if _, err := run(t, "quantize", tiny+"st/tiny-rwkv-7v0-834K.st", good, "--nf4", "all", "--device", "cpu"); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "inspect", "--verify", "--tensors=false", good); err != nil || !strings.Contains(out, "checksums:  every payload read and verified") {
		t.Errorf("good artifact (%v):\n%s", err, out)
	}
	b := mustRead(t, good)
	b[len(b)/2] ^= 0x40
	bad := filepath.Join(dir, "bad.rkv")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := rwkvkit(t, "inspect", "--verify", bad)
	if code != 2 || !strings.Contains(stderr, bad) || !strings.Contains(stderr, `tensor "blocks.`) || !strings.Contains(stderr, "checksum mismatch") {
		t.Errorf("corrupt artifact: exit %d, %q", code, stderr)
	}
	// Loading it fails the same way on either engine (the GPU's streams
	// the payloads into its staging buffers), naming the tensor once.
	devices := []string{"cpu"}
	if gputest.Available() {
		devices = append(devices, "gpu")
	}
	for _, dev := range devices {
		_, stderr, code := rwkvkit(t, "logits", bad, "--device", dev, "--tokens", "1,2", "--out", filepath.Join(dir, dev+".bin"))
		if code != 2 || !strings.Contains(stderr, bad) || strings.Count(stderr, `tensor "blocks.`) != 1 || !strings.Contains(stderr, "checksum mismatch") {
			t.Errorf("logits of the corrupt artifact on the %s: exit %d, %q", dev, code, stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, dev+".bin")); err == nil {
			t.Errorf("logits of the corrupt artifact on the %s left an output", dev)
		}
	}
	if _, stderr, code := rwkvkit(t, "inspect", "--verify", tiny+"tiny-rwkv-7v0-834K.pth"); code != 2 || !strings.Contains(stderr, "only .rkv artifacts carry checksums") {
		t.Errorf(".pth: exit %d, %q", code, stderr)
	}
}

func TestInspect(t *testing.T) {
	out, err := run(t, "inspect", tiny+"tiny-rwkv-6v0-1m.pth")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind:       pth", "v6", "heads:      8 × 8", "vocabulary: 256", "FFN:        224", "mix 32, decay 64", "blocks.0.att.time_maa_w1"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	js, err := run(t, "inspect", "--json", tiny+"st/tiny-rwkv-7v0-834K.st")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind": "safetensors"`, `"version": "7"`, `"layout": "web-rwkv"`, `"head_size": 64`} {
		if !strings.Contains(js, want) {
			t.Errorf("inspect --json lacks %q", want)
		}
	}
}
