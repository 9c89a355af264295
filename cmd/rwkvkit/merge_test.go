package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/safetensors"
)

// A full-rank LoRA made from the difference of two models (A = I, B = W2 − W1,
// alpha = rank) turns the first into the second: the weights come out equal
// (the difference of two float16 values is exact in float32), and so do the
// runner's logits.
func TestMergeFullRankDifference(t *testing.T) {
	dir := t.TempDir()
	base := tiny + "st/tiny-rwkv-7v0-834K.st"
	src, err := format.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	target := &format.Source{}
	adapter := &format.Source{}
	for _, tn := range src.Tensors {
		if !strings.HasSuffix(tn.Name, ".weight") || len(tn.Shape) != 2 || !strings.Contains(tn.Name, "att.") && !strings.Contains(tn.Name, "ffn.") {
			target.Tensors = append(target.Tensors, tn)
			continue
		}
		w1 := f16Values(t, tn)
		w2 := make([]float32, len(w1))
		for i, v := range w1 {
			w2[i] = format.F16ToF32(format.F32ToF16(v + float32(rng.NormFloat64()*0.02)))
		}
		target.Tensors = append(target.Tensors, f16Tensor(t, tn.Name, tn.Shape, w2))
		out, in := tn.Shape[0], tn.Shape[1]
		eye := make([]float32, in*in)
		for i := range in {
			eye[i*in+i] = 1
		}
		diff := make([]float32, len(w1))
		for i := range diff {
			diff[i] = w2[i] - w1[i]
		}
		module := strings.TrimSuffix(tn.Name, ".weight")
		// float32 factors: the difference is exact in float32, not in float16.
		adapter.Tensors = append(adapter.Tensors,
			f32Tensor(t, module+".lora.0", []int64{in, in}, eye),
			f32Tensor(t, module+".lora.1", []int64{out, in}, diff))
	}
	targetFile, loraFile := filepath.Join(dir, "target.st"), filepath.Join(dir, "diff-lora.st")
	for path, s := range map[string]*format.Source{targetFile: target, loraFile: adapter} {
		if err := safetensors.WriteFile(context.Background(), path, s, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	// alpha = rank: 64 for [·, 64] inputs, 256 for ffn.value's [64, 256].
	merged := filepath.Join(dir, "merged.rkv")
	if _, err := run(t, "merge", base, merged, "--lora", loraFile+":64", "--lora-pattern", `ffn\.value:256`, "--device", "cpu"); err != nil {
		t.Fatal(err)
	}
	got, err := format.Open(merged)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	for _, want := range target.Tensors {
		g := got.Lookup(want.Name)
		if g == nil {
			t.Fatalf("merged artifact lacks %s", want.Name)
		}
		gb, _ := g.Bytes()
		wb, _ := want.Bytes()
		if !bytes.Equal(gb, wb) {
			t.Fatalf("%s: merged weights differ from the target model's", want.Name)
		}
	}
	if _, _, code := rwkvkit(t, "verify", merged, "--ref", targetFile, "--max-dlogit", "0", "--min-top1", "100"); code != 0 {
		t.Errorf("merged model's logits differ from the target's (exit %d)", code)
	}
	out, err := run(t, "inspect", merged)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "LoRA:       diff-lora.st at alpha 64") || !strings.Contains(out, "source:     tiny-rwkv-7v0-834K.st") {
		t.Errorf("inspect does not show the provenance:\n%s", out[:min(len(out), 800)])
	}
}

// The same LoRA as web-rwkv-named .st and as PEFT-named .pth (lora_A
// transposed) gives identical merged tensors, and alpha 0 changes nothing.
func TestMergeNamingsAndKinds(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	const r = 3
	web, peft := &format.Source{}, &format.Source{}
	for l := range 12 {
		a := make([]float32, 64*r) // [in, r]
		b := make([]float32, 64*r) // [out, r]
		for i := range a {
			a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64()*0.1)
		}
		at := make([]float32, len(a)) // [r, in]
		for i := range 64 {
			for k := range r {
				at[k*64+i] = a[i*r+k]
			}
		}
		m := fmt.Sprintf("blocks.%d.att.value", l)
		web.Tensors = append(web.Tensors, f16Tensor(t, m+".lora.0", []int64{64, r}, a), f16Tensor(t, m+".lora.1", []int64{64, r}, b))
		peft.Tensors = append(peft.Tensors, f16Tensor(t, m+".lora_A", []int64{r, 64}, at), f16Tensor(t, m+".lora_B", []int64{64, r}, b))
	}
	webFile, peftFile := filepath.Join(dir, "web.st"), filepath.Join(dir, "peft.pth")
	if err := safetensors.WriteFile(context.Background(), webFile, web, false, nil); err != nil {
		t.Fatal(err)
	}
	writePTH(t, peftFile, peft)
	base := tiny + "tiny-rwkv-7v0-834K.pth"
	outs := map[string]string{}
	for name, lora := range map[string]string{"web": webFile, "peft": peftFile, "zero": webFile + ":0"} {
		outs[name] = filepath.Join(dir, name+".rkv")
		if _, err := run(t, "merge", base, outs[name], "--lora", lora, "--device", "cpu"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	plain := filepath.Join(dir, "plain.rkv")
	if _, err := run(t, "quantize", base, plain, "--int8", "0", "--device", "cpu"); err != nil {
		t.Fatal(err)
	}
	w, p, z, pl := openAll(t, outs["web"]), openAll(t, outs["peft"]), openAll(t, outs["zero"]), openAll(t, plain)
	changed := 0
	for name, wb := range w {
		if !bytes.Equal(wb, p[name]) {
			t.Errorf("%s: web-rwkv-named .st and PEFT-named .pth merges differ", name)
		}
		if !bytes.Equal(z[name], pl[name]) {
			t.Errorf("%s: alpha 0 changed the model", name)
		}
		if !bytes.Equal(wb, z[name]) {
			changed++
		}
	}
	if changed != 12 {
		t.Errorf("%d tensors changed by the merge, want the 12 att.value matrices", changed)
	}
}
