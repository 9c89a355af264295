package main

import (
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

// A model with the World vocabulary (65536 outputs) gets the World
// tokenizer: "Hello, world!" is the four tokens the vocabulary's published
// cases give, so logits writes four rows; run decodes what it samples.
func TestWorldVocabularyModel(t *testing.T) {
	cfg := synth.Config{Layers: 1, Embed: 64, Vocab: 65536, HeadSize: 64, DecayLoRA: 8, ALoRA: 8, VLoRA: 8, GLoRA: 8}
	src, err := synth.RWKV7(cfg, format.F16, 11)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "world.pth")
	writePTH(t, model, src)
	out := filepath.Join(dir, "logits.f32")
	if _, err := run(t, "logits", model, "--text", "Hello, world!", "--out", out); err != nil {
		t.Fatal(err)
	}
	if n := len(floats(t, out)); n != 4*65536 {
		t.Errorf("%d logits, want 4 positions × 65536", n)
	}
	if _, err := run(t, "run", model, "--prompt", "User: hi", "-n", "8", "--seed", "3"); err != nil {
		t.Errorf("run: %v", err)
	}
}
