package artifact

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/lora"
	"github.com/rwkvkit/rwkvkit/quantize"
)

const (
	tinyST   = "../fixtures/rwkv-tiny/st/tiny-rwkv-7v0-834K.st"
	tinyPTH  = "../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth"
	tinyLoRA = "../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.demo-lora.st"
)

// Every failure names the file at fault, leaves no output behind and
// closes every file it opened.
func TestBuildFailures(t *testing.T) {
	dir := t.TempDir()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		spec Spec
		want string // in the error
	}{
		{"missing base", context.Background(), Spec{Base: filepath.Join(dir, "none.st")}, "none.st"},
		{"base is a LoRA", context.Background(), Spec{Base: tinyLoRA}, tinyLoRA},
		{"adapter is a model", context.Background(), Spec{Base: tinyST, LoRAs: []LoRA{{Path: tinyPTH, Alpha: 1}}}, tinyPTH},
		{"adapter is missing", context.Background(), Spec{Base: tinyST, LoRAs: []LoRA{{Path: tinyLoRA, Alpha: 1}, {Path: filepath.Join(dir, "x.st"), Alpha: 1}}}, "x.st"},
		{"layer out of range", context.Background(), Spec{Base: tinyST, Quantize: []quantize.Rule{{Kind: format.Int8Block, Layers: "3-12"}}}, "layer 12 does not exist"},
		{"pattern matches nothing", context.Background(), Spec{Base: tinyST, LoRAs: []LoRA{{Path: tinyLoRA, Alpha: 1}},
			Patterns: []lora.Pattern{{Regexp: regexp.MustCompile(`ffn`), Alpha: 2}}}, `LoRA pattern "ffn" matches none of the 24 tensors`},
		{"cancelled", cancelled, Spec{Base: tinyST, LoRAs: []LoRA{{Path: tinyLoRA, Alpha: 1}}}, context.Canceled.Error()},
	}
	before := openFiles(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "out.rkv")
			_, err := Build(c.ctx, out, &c.spec)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			if c.ctx.Err() != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("error %v does not wrap context.Canceled", err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("left %v behind", left)
			}
			// Check finds the same problem, before any work.
			if c.ctx.Err() == nil {
				if err := Check(c.ctx, out, &c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Check: %v, want an error saying %q", err, c.want)
				}
			}
		})
	}
	if after := openFiles(t); after != before {
		t.Errorf("%d files open before, %d after", before, after)
	}
}

func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd to count open files")
	}
	return len(fds)
}

func TestCheckAcceptsWhatBuilds(t *testing.T) {
	spec := &Spec{Base: tinyPTH, LoRAs: []LoRA{{Path: tinyLoRA, Alpha: 0.5}},
		Patterns: []lora.Pattern{{Regexp: regexp.MustCompile(`att\.value`), Alpha: 1}},
		Quantize: []quantize.Rule{{Kind: format.NF4Block, Layers: "12"}}}
	out := filepath.Join(t.TempDir(), "m.rkv")
	if err := Check(context.Background(), out, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("Check wrote the output")
	}
	res, err := Build(context.Background(), out, spec)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(out)
	if res.OutputBytes != fi.Size() || res.Params != 829888 || res.Tensors == 0 {
		t.Errorf("result %+v, file of %d bytes", res, fi.Size())
	}
	// NF4 (4.25 bits per weight with its scales) for the layers' matrices,
	// float16 for the rest: between the two.
	if b := res.BitsPerWeight(); b <= 4.25 || b >= 16 {
		t.Errorf("%.2f bits per weight", b)
	}
}
