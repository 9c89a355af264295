package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/safetensors"
)

// The bytes of quantize's and merge's artifacts are pinned: the SHA-256 of
// each output below was taken from the command as it was before its work
// moved into the library packages, and must not change while it moves or
// later, unless the artifact format itself is deliberately changed (then
// every hash is taken again and docs/ARTIFACT.md says why). They were taken
// again once, when the provenance began to record the quantization plan
// and the LoRA patterns (the tensors' bytes were checked unchanged).
var pinnedArtifacts = []struct {
	name string
	args func(dir string) []string
	sha  string
}{
	{"quantize v4 int8+nf4", func(string) []string {
		return []string{"quantize", tiny + "tiny-rwkv-4v0-660K.pth", "OUT", "--int8", "all", "--nf4", "0-1"}
	}, "104a8093a73bb5fa8bade72740eecc66efab4bb9a3aec6c29e49ae2b86584314"},
	{"quantize v5.1 nf4 N", func(string) []string {
		return []string{"quantize", tiny + "tiny-rwkv-5v1-730K.pth", "OUT", "--nf4", "2"}
	}, "bb9e8e451b889b33525821f18880266f8023a10ca66fe39d9f17cd69653cacc9"},
	{"quantize v5.2 int8", func(string) []string {
		return []string{"quantize", tiny + "tiny-rwkv-5v2-730K.pth", "OUT", "--int8", "all"}
	}, "85d525deb053659b971635665c8388903b2d2ad2272cb5eaca5aef91b38210a5"},
	{"quantize v6 nf4+int8", func(string) []string {
		return []string{"quantize", tiny + "tiny-rwkv-6v0-1m.pth", "OUT", "--nf4", "all", "--int8", "3-5,9"}
	}, "d3159907ebac77d6acbcf3e32b2bf0ef5851bc6a58cf3e24449f4d08f84ed471"},
	{"quantize v7 .st", func(string) []string {
		return []string{"quantize", tiny + "st/tiny-rwkv-7v0-834K.st", "OUT", "--int8", "6", "--nf4", "6-11"}
	}, "be3b0c986713dde4e4cbf4e5dde2eddf0513b919a52353bac6e1aa99ff15fe3f"},
	{"merge v7 f16", func(dir string) []string {
		return []string{"merge", tiny + "st/tiny-rwkv-7v0-834K.st", "OUT", "--lora", filepath.Join(dir, "lora64.st") + ":0.5",
			"--lora-pattern", `att\.key:2`}
	}, "6f5fb599400ea1315e8480fbfc1e8b25cbbebed9fcc341f74fb94afc68b3fc2d"},
	{"merge v7 pth twice nf4", func(dir string) []string {
		return []string{"merge", tiny + "tiny-rwkv-7v0-834K.pth", "OUT", "--lora", filepath.Join(dir, "lora64.st"),
			"--lora", filepath.Join(dir, "lora64.st") + ":-1.5", "--nf4", "all"}
	}, "43c5453fbf559cbe6f0d188863205d6fd56fc3410b0bd6cb9b10a2ddb9a206f2"},
	{"merge v6 int8", func(dir string) []string {
		return []string{"merge", tiny + "tiny-rwkv-6v0-1m.pth", "OUT", "--lora", filepath.Join(dir, "lora64.st"), "--int8", "all"}
	}, "1764a008b660cb4e366fba2412b5c4bc72db5dd3a9a392b853bf31a39450ee9f"},
}

func TestArtifactBytesPinned(t *testing.T) {
	// The provenance names the quantizer, "CPU, 2 threads": the hashes were
	// taken with two threads.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	dir := t.TempDir()
	writePinLoRA(t, filepath.Join(dir, "lora64.st"), 12, 64)
	for _, c := range pinnedArtifacts {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "out.rkv")
			os.Remove(out)
			args := c.args(dir)
			for i, a := range args {
				if a == "OUT" {
					args[i] = out
				}
			}
			if _, err := run(t, append(args, "--device", "cpu")...); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(mustRead(t, out))
			if got := hex.EncodeToString(sum[:]); got != c.sha {
				t.Errorf("artifact SHA-256 %s, pinned %s", got, c.sha)
			}
		})
	}
}

// writePinLoRA writes a rank-4 float16 LoRA in web-rwkv's naming for
// att.key and att.value of every layer, from a fixed seed.
func writePinLoRA(t *testing.T, path string, layers int, embed int64) {
	t.Helper()
	const rank = 4
	rng := rand.New(rand.NewPCG(8, 13))
	src := &format.Source{}
	vals := func(n int64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.25)
		}
		return v
	}
	for l := range layers {
		for _, m := range []struct {
			name    string
			out, in int64
		}{{"att.key", embed, embed}, {"att.value", embed, embed}} {
			p := fmt.Sprintf("blocks.%d.%s.lora.", l, m.name)
			src.Tensors = append(src.Tensors,
				f16Tensor(t, p+"0", []int64{m.in, rank}, vals(m.in*rank)),
				f16Tensor(t, p+"1", []int64{m.out, rank}, vals(m.out*rank)))
		}
	}
	if err := safetensors.WriteFile(context.Background(), path, src, true, nil); err != nil {
		t.Fatal(err)
	}
}
