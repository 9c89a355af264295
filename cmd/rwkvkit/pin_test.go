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
// every hash is taken again and docs/ARTIFACT.md says why).
var pinnedArtifacts = []struct {
	name string
	args func(dir string) []string
	sha  string
}{
	{"quantize v4 int8+nf4", func(string) []string {
		return []string{"quantize", tiny + "tiny-rwkv-4v0-660K.pth", "OUT", "--int8", "all", "--nf4", "0-1"}
	}, "23f65608bf337e8e850072041da9a88d708b7e563307fa9065dc4bf50f4407a7"},
	{"quantize v5.1 nf4 N", func(string) []string {
		return []string{"quantize", tiny + "tiny-rwkv-5v1-730K.pth", "OUT", "--nf4", "2"}
	}, "6305c1255b4562e0ba294ec366c79d3d2fd312a3a326bed90018bcd7dad36012"},
	{"quantize v5.2 int8", func(string) []string {
		return []string{"quantize", tiny + "tiny-rwkv-5v2-730K.pth", "OUT", "--int8", "all"}
	}, "dc9d621e512f11b8b23a83c49f291a188b09169b8b79437b35521760b879f81d"},
	{"quantize v6 nf4+int8", func(string) []string {
		return []string{"quantize", tiny + "tiny-rwkv-6v0-1m.pth", "OUT", "--nf4", "all", "--int8", "3-5,9"}
	}, "84dbc05be4df417189578cfed71959ece78d969e63eb92bfccb4b29c9e075085"},
	{"quantize v7 .st", func(string) []string {
		return []string{"quantize", tiny + "st/tiny-rwkv-7v0-834K.st", "OUT", "--int8", "6", "--nf4", "6-11"}
	}, "b97bd1ab172e507d958b9fd28eb0de3639e0e1dfad4b64071cb8c590c026ecce"},
	{"merge v7 f16", func(dir string) []string {
		return []string{"merge", tiny + "st/tiny-rwkv-7v0-834K.st", "OUT", "--lora", filepath.Join(dir, "lora64.st") + ":0.5",
			"--lora-pattern", `att\.key:2`}
	}, "9b66dfd53923e889e1f889b787dc970f99d0b3ce470c6ab1ed864fe60ec38cab"},
	{"merge v7 pth twice nf4", func(dir string) []string {
		return []string{"merge", tiny + "tiny-rwkv-7v0-834K.pth", "OUT", "--lora", filepath.Join(dir, "lora64.st"),
			"--lora", filepath.Join(dir, "lora64.st") + ":-1.5", "--nf4", "all"}
	}, "c2bf79a8953c8760c81d6d641f5671c7b5376751c434e6272045c82e5980821b"},
	{"merge v6 int8", func(dir string) []string {
		return []string{"merge", tiny + "tiny-rwkv-6v0-1m.pth", "OUT", "--lora", filepath.Join(dir, "lora64.st"), "--int8", "all"}
	}, "e9f6ed671ca52c5a16a792580e8ef6f47c12352f2af4722a1c3a6648d1a8e517"},
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
