package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/verify"
)

// quantize → .rkv: every command reads it; converting it back gives float16
// values equal to the dequantized weights; the float16 artifact's logits
// equal the .st's bit for bit.
func TestQuantizeArtifactRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := tiny + "st/tiny-rwkv-5v2-730K.st"
	f16 := filepath.Join(dir, "f16.rkv")
	if _, err := run(t, "merge", st, f16, "--lora", tiny+"st/tiny-rwkv-5v2-730K.st:0", "--device", "cpu"); err == nil {
		t.Fatal("merging a whole model as a LoRA was accepted")
	}
	nf4 := filepath.Join(dir, "nf4.rkv")
	if _, err := run(t, "quantize", st, nf4, "--int8", "all", "--nf4", "6-11", "--device", "cpu"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "inspect", nf4)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind:       rkv", "blocks.0.att.key.weight", "Q8_128", "NF4_64", "blocks.11.ffn.value.weight"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect of the artifact lacks %q", want)
		}
	}
	if !regexp.MustCompile(`blocks\.0\.ffn\.key\.weight +Q8_128`).MatchString(out) ||
		!regexp.MustCompile(`blocks\.11\.ffn\.key\.weight +NF4_64`).MatchString(out) {
		t.Errorf("later --nf4 did not win over --int8 all on layers 6-11:\n%s", out)
	}
	back := filepath.Join(dir, "back.st")
	if _, err := run(t, "convert", nf4, back); err != nil {
		t.Fatal(err)
	}
	// The .st holds the dequantized weights rounded to float16: 2.5e-7 measured.
	if _, _, code := rwkvkit(t, "verify", back, "--ref", nf4, "--max-kl", "1e-5", "--min-top1", "100"); code != 0 {
		t.Errorf("the dequantized .st does not compute what the artifact computes (exit %d)", code)
	}
	// NF4 on half the layers of a 64-wide model: mean KL 0.030 measured.
	if _, _, code := rwkvkit(t, "verify", nf4, "--ref", st, "--max-kl", "0.05"); code != 0 {
		t.Errorf("the quantized model strays too far from its source (exit %d)", code)
	}
}

// A float16 artifact holds the .st's bytes: the runner's logits from it are
// the .st's, bit for bit, on all five models.
func TestFloat16ArtifactLogitsEqualST(t *testing.T) {
	dir := t.TempDir()
	for _, m := range tinyModels {
		st := tiny + "st/" + m + ".st"
		rkv := filepath.Join(dir, m+".rkv")
		if _, err := run(t, "quantize", st, rkv, "--int8", "0", "--device", "cpu"); err != nil {
			t.Fatal(err)
		}
		a, b := filepath.Join(dir, m+".st.f32"), filepath.Join(dir, m+".rkv.f32")
		for path, model := range map[string]string{a: st, b: rkv} {
			if _, err := run(t, "logits", model, "--text", verify.SampleText[:120], "--out", path); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(mustRead(t, a), mustRead(t, b)) {
			t.Errorf("%s: logits from the float16 .rkv differ from the .st's", m)
		}
	}
}

// LoRA checkpoints and state files convert by web-rwkv's rules too: lora_A
// becomes lora.0, transposed; time_state is transposed. Converting the
// result again, or a LoRA already in web-rwkv's names, changes nothing.
func TestConvertLoRAAndState(t *testing.T) {
	dir := t.TempDir()
	a := f16Tensor(t, "blocks.0.att.key.lora_A", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	b := f16Tensor(t, "blocks.0.att.key.lora_B", []int64{3, 2}, []float32{1, 2, 3, 4, 5, 6})
	s := f16Tensor(t, "blocks.0.att.time_state", []int64{1, 2, 3}, []float32{1, 2, 3, 4, 5, 6})
	in := filepath.Join(dir, "adapter.pth")
	writePTH(t, in, &format.Source{Tensors: []*format.Tensor{a, b, s}})
	out := filepath.Join(dir, "adapter.st")
	if _, err := run(t, "convert", in, out); err != nil {
		t.Fatal(err)
	}
	got, err := format.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want := map[string]struct {
		shape []int64
		vals  []float32
	}{
		"blocks.0.att.key.lora.0": {[]int64{3, 2}, []float32{1, 4, 2, 5, 3, 6}},
		"blocks.0.att.key.lora.1": {[]int64{3, 2}, []float32{1, 2, 3, 4, 5, 6}},
		"blocks.0.att.time_state": {[]int64{1, 3, 2}, []float32{1, 4, 2, 5, 3, 6}},
	}
	for name, w := range want {
		tn := got.Lookup(name)
		if tn == nil {
			t.Fatalf("converted file lacks %s", name)
		}
		v := f16Values(t, tn)
		if fmt.Sprint(tn.Shape) != fmt.Sprint(w.shape) || fmt.Sprint(v) != fmt.Sprint(w.vals) {
			t.Errorf("%s: %v %v, want %v %v", name, tn.Shape, v, w.shape, w.vals)
		}
	}
	for _, in := range []string{out, tiny + "tiny-rwkv-7v0-834K.demo-lora.st"} {
		again := filepath.Join(dir, "again.st")
		os.Remove(again)
		if _, err := run(t, "convert", in, again); err != nil {
			t.Fatal(err)
		}
		if a, b := shapes(t, in), shapes(t, again); !maps.Equal(a, b) {
			t.Errorf("%s: shapes %v converted to %v", in, a, b)
		}
		if !maps.EqualFunc(openAll(t, in), openAll(t, again), bytes.Equal) {
			t.Errorf("%s: the tensors' bytes changed when converted again", in)
		}
	}
}

func floats(t *testing.T, path string) []float32 {
	b := mustRead(t, path)
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
