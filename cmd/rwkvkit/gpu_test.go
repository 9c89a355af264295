package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

// Quantizing on the GPU writes the same tensors as on the CPU, byte for
// byte, for every tiny model and both schemes; merging on the GPU gives the
// CPU's merged weights (identical here; the products agree within float32
// rounding in general, and a float16 result hides that).
func TestGPUArtifactsMatchCPU(t *testing.T) {
	gputest.Device(t) // skips, or fails under RWKVKIT_REQUIRE_GPU, without a GPU
	dir := t.TempDir()
	for _, m := range tinyModels {
		for _, kind := range []string{"--int8", "--nf4"} {
			outs := map[string]string{}
			for _, dev := range []string{"cpu", "gpu"} {
				outs[dev] = filepath.Join(dir, m+kind+"-"+dev+".rkv")
				if _, err := run(t, "quantize", tiny+m+".pth", outs[dev], kind, "all", "--device", dev); err != nil {
					t.Fatalf("%s %s on %s: %v", m, kind, dev, err)
				}
			}
			cpu, gpu := openAll(t, outs["cpu"]), openAll(t, outs["gpu"])
			for name, b := range cpu {
				if !bytes.Equal(b, gpu[name]) {
					t.Errorf("%s %s: %s differs between CPU and GPU", m, kind, name)
				}
			}
		}
	}
	outs := map[string]string{}
	for _, dev := range []string{"cpu", "gpu"} {
		outs[dev] = filepath.Join(dir, "merged-"+dev+".rkv")
		if _, err := run(t, "demo", "--keep", filepath.Join(dir, "demo-"+dev), "--device", dev); err != nil {
			t.Fatal(err)
		}
		outs[dev] = filepath.Join(dir, "demo-"+dev, "merged-nf4.rkv")
	}
	cpu, gpu := openAll(t, outs["cpu"]), openAll(t, outs["gpu"])
	for name, b := range cpu {
		if !bytes.Equal(b, gpu[name]) {
			t.Errorf("demo's merged NF4 artifact: %s differs between CPU and GPU", name)
		}
	}
}

// --device gpu runs run, logits and verify on the GPU engine: its logits
// follow the fixture's reference to 1e-2, the bound of a model whose
// weights are held in float16 (fixtures/rwkv-tiny/README.md), with the same
// top token; or, for a version it does not run, the command says so and
// exits 2.
func TestGPUDeviceCommands(t *testing.T) {
	gputest.Device(t)
	for _, m := range tinyModels {
		args := []string{"verify", tiny + m + ".pth", "--device", "gpu", "--tokens", "34,105,110",
			"--expect", tiny + m + ".quote_in.logits.f32", "--max-dlogit", "1e-2", "--min-top1", "100"}
		stdout, stderr, code := rwkvkit(t, args...)
		switch {
		case code == 2 && strings.Contains(stderr, "the GPU engine does not run"):
			t.Logf("%s: %s", m, strings.TrimSpace(stderr))
		case code != 0 || !strings.Contains(stderr, "device: GPU"):
			t.Errorf("%s: exit %d\n%s%s", m, code, stdout, stderr)
		}
	}
	out, stderr, code := rwkvkit(t, "run", tiny+"tiny-rwkv-7v0-834K.pth", "--device", "gpu", "--prompt", "\"in", "-n", "1", "--temperature", "0")
	if code != 0 || out != " \n" || !strings.Contains(stderr, "device: GPU") {
		t.Errorf("greedy run on the GPU: exit %d, %q, %q", code, out, stderr)
	}
}
