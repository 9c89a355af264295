package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/serialize"
)

const demoLoRA = tiny + "tiny-rwkv-7v0-834K.demo-lora.st"

func provenanceOf(t *testing.T, path string) serialize.Provenance {
	t.Helper()
	h, err := serialize.ReadHeaderFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return h.Provenance
}

// Rules in another order make another file, and the provenance tells them
// apart: it records what the rules came to, layer by layer.
func TestProvenanceRecordsPlan(t *testing.T) {
	dir := t.TempDir()
	base := tiny + "tiny-rwkv-7v0-834K.pth"
	a, b := filepath.Join(dir, "a.rkv"), filepath.Join(dir, "b.rkv")
	if _, err := run(t, "quantize", base, a, "--int8", "all", "--nf4", "6", "--device", "cpu"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "quantize", base, b, "--nf4", "6", "--int8", "all", "--device", "cpu"); err != nil {
		t.Fatal(err)
	}
	pa, pb := provenanceOf(t, a).Quantization.Plan, provenanceOf(t, b).Quantization.Plan
	if pa != "Int8 layers 6-11; NF4 layers 0-5" || pb != "Int8 layers 0-11" {
		t.Errorf("plans %q and %q", pa, pb)
	}
	out, err := run(t, "inspect", a)
	if err != nil || !strings.Contains(out, "quantized:  Int8 layers 6-11; NF4 layers 0-5, on CPU") {
		t.Errorf("inspect does not show the plan (%v):\n%s", err, out)
	}
}

// --lora-pattern alphas are recorded; a pattern that matches no tensor the
// adapters change is an error, and nothing is written.
func TestLoRAPatterns(t *testing.T) {
	dir := t.TempDir()
	base, out := tiny+"st/tiny-rwkv-7v0-834K.st", filepath.Join(dir, "m.rkv")
	if _, err := run(t, "merge", base, out, "--lora", demoLoRA+":0.5", "--lora-pattern", `att\.key:2`, "--lora-pattern", `blocks\.1\.:0`, "--device", "cpu"); err != nil {
		t.Fatal(err)
	}
	p := provenanceOf(t, out)
	if len(p.LoRAPatterns) != 2 || p.LoRAPatterns[0] != (serialize.LoRAPattern{Regexp: `att\.key`, Alpha: 2}) || p.LoRAPatterns[1].Alpha != 0 {
		t.Errorf("patterns recorded: %+v", p.LoRAPatterns)
	}
	js, err := runStdout(t, "inspect", "--json", "--tensors=false", out)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Provenance map[string]any `json:"provenance"`
	}
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"tool", "tool_version", "sources", "loras", "lora_patterns", "quantization"} {
		if _, ok := r.Provenance[key]; !ok {
			t.Errorf("inspect --json provenance lacks %q: %v", key, r.Provenance)
		}
	}
	if strings.Contains(js, `"ToolVersion"`) || strings.Contains(js, `"SHA256"`) {
		t.Errorf("provenance keys are not snake_case:\n%s", js)
	}
	bad := filepath.Join(dir, "bad.rkv")
	for _, pattern := range []string{`ffn\.key:2`, `^att:1`} {
		_, stderr, code := rwkvkit(t, "merge", base, bad, "--lora", demoLoRA, "--lora-pattern", pattern, "--device", "cpu")
		if code != 2 || !strings.Contains(stderr, "matches none of the 24 tensors the adapters change") {
			t.Errorf("%s: exit %d, %q", pattern, code, stderr)
		}
		if _, err := os.Stat(bad); err == nil {
			t.Errorf("%s: wrote the artifact", pattern)
		}
	}
}

// Every flag and input is checked before any device is opened or any work
// done: a bad alpha, a missing adapter, a pattern or a layer spec that
// cannot apply fail without a "device:" line.
func TestArtifactChecksBeforeWork(t *testing.T) {
	dir := t.TempDir()
	base, out := tiny+"st/tiny-rwkv-7v0-834K.st", filepath.Join(dir, "m.rkv")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--lora", demoLoRA + ":abc"}, `alpha "abc" is not a finite number`},
		{[]string{"--lora", filepath.Join(dir, "none.st")}, "none.st"},
		{[]string{"--lora", demoLoRA, "--lora-pattern", "zzz:1"}, `LoRA pattern "zzz" matches none`},
		{[]string{"--lora", demoLoRA, "--nf4", "40"}, "40 layers, but the model has 12"},
		{[]string{"--lora", demoLoRA, "--device", "tpu"}, `"tpu" for "--device" flag: want auto, cpu or gpu`},
	} {
		args := append([]string{"merge", base, out, "--device", "gpu"}, c.args...)
		_, stderr, code := rwkvkit(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "device:") {
			t.Errorf("%v: exit %d, %q; want 2 and %q before any device", c.args, code, stderr, c.want)
		}
	}
}
