package synth_test

import (
	"bytes"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
	_ "github.com/rwkvkit/rwkvkit/pth"
)

// A synthetic model written as a .pth reads back, through the real reader,
// with every tensor's name, dtype, shape and bytes intact, and is detected
// as the RWKV-7 of its configuration.
func TestWritePTHReadsBack(t *testing.T) {
	cfg := synth.Config{Layers: 2, Embed: 128, Vocab: 300, HeadSize: 64, DecayLoRA: 16, ALoRA: 16, VLoRA: 8, GLoRA: 32}
	for _, dt := range []format.DType{format.F32, format.F16, format.BF16} {
		src, err := synth.RWKV7(cfg, dt, 5)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := synth.WritePTH(&buf, src); err != nil {
			t.Fatal(err)
		}
		back, err := format.OpenReaderAt(bytes.NewReader(buf.Bytes()), "synthetic.pth")
		if err != nil {
			t.Fatal(err)
		}
		if len(back.Tensors) != len(src.Tensors) {
			t.Fatalf("%v: %d tensors back, wrote %d", dt, len(back.Tensors), len(src.Tensors))
		}
		for i, want := range src.Tensors {
			got := back.Tensors[i]
			wb, _ := want.Bytes()
			gb, err := got.Bytes()
			if err != nil || got.Name != want.Name || got.DType != dt || !bytes.Equal(gb, wb) {
				t.Fatalf("%v: tensor %d: %s %v %v (%v), wrote %s", dt, i, got.Name, got.DType, got.Shape, err, want.Name)
			}
		}
		info, err := format.Detect(back)
		if err != nil || info.Version != format.V7 || info.Embed != 128 || info.Heads != 2 || info.DecayLoRA != 16 || info.VLoRA != 8 {
			t.Errorf("%v: detected %+v, %v", dt, info, err)
		}
	}
}

// Each synthetic v5 is detected as the version it was made as, with its
// heads and FFN.
func TestRWKV5Detected(t *testing.T) {
	cfg := synth.Config{Layers: 2, Embed: 128, Vocab: 300, HeadSize: 32}
	for _, v := range []format.Version{format.V5_0, format.V5_1, format.V5_2} {
		src, err := synth.RWKV5(cfg, v, format.F16, 3)
		if err != nil {
			t.Fatal(err)
		}
		info, err := format.Detect(src)
		if err != nil || info.Version != v || info.Heads != 4 || info.HeadSize != 32 || info.FFN != 512 || info.Layers != 2 {
			t.Errorf("%s: detected %+v, %v", v, info, err)
		}
	}
	if _, err := synth.RWKV5(cfg, format.V6, format.F16, 3); err == nil {
		t.Error("a v6 was made as a v5")
	}
}

// A seed gives the same model every time, and neighbouring seeds (2k and
// 2k+1 among them) give different ones.
func TestSeedsDiffer(t *testing.T) {
	cfg := synth.Config{Layers: 1, Embed: 32, Vocab: 64, HeadSize: 32, DecayLoRA: 32, ALoRA: 32, VLoRA: 32, GLoRA: 32}
	weights := func(seed uint64) []byte {
		src, err := synth.RWKV7(cfg, format.F16, seed)
		if err != nil {
			t.Fatal(err)
		}
		b, err := src.Lookup("blocks.0.att.key.weight").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	seen := map[string]uint64{}
	for seed := range uint64(8) {
		b := weights(seed)
		if !bytes.Equal(b, weights(seed)) {
			t.Fatalf("seed %d gave two models", seed)
		}
		if s, ok := seen[string(b)]; ok {
			t.Errorf("seeds %d and %d give the same model", s, seed)
		}
		seen[string(b)] = seed
	}
}
