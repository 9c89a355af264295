package gguf

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

const fixtureDir = "../fixtures/gguf"

func readF32(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// TestDequantizeLikeGGML decodes blocks that ggml's own quantizers made
// and compares with ggml's own dequantization of them (to_float of libggml,
// fixtures/gguf/dequant.c), bit for bit.
func TestDequantizeLikeGGML(t *testing.T) {
	dir := filepath.Join(fixtureDir, "dequant")
	for _, typ := range []Type{TypeF16, TypeBF16, TypeQ4_0, TypeQ4_1, TypeQ5_0, TypeQ5_1, TypeQ8_0, TypeQ2_K, TypeQ3_K, TypeQ4_K, TypeQ5_K, TypeQ6_K} {
		t.Run(typ.String(), func(t *testing.T) {
			name := map[Type]string{TypeF16: "f16", TypeBF16: "bf16"}[typ]
			if name == "" {
				name = typ.String()
				name = "q" + name[1:]
			}
			blocks, err := os.ReadFile(filepath.Join(dir, name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			want := readF32(t, filepath.Join(dir, name+".f32"))
			got := make([]float32, len(want))
			if err := decodeRow(got, blocks, typ); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("element %d: %g, ggml gives %g", i, got[i], want[i])
				}
			}
		})
	}
}

func TestQ8_0LikeGGML(t *testing.T) {
	in := readF32(t, filepath.Join(fixtureDir, "dequant", "input.f32"))
	want, err := os.ReadFile(filepath.Join(fixtureDir, "dequant", "q8_0.bin"))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	encodeQ8_0(got, in)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("byte %d (block %d): %#02x, ggml gives %#02x", i, i/34, got[i], want[i])
		}
	}
	_ = format.F32
}
