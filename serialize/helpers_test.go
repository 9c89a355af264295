package serialize

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// spec is a tensor of a test source. size is the storage size worked out
// by hand from docs/web-rwkv-layout.md §2, not by the code under test.
type spec struct {
	name  string
	dtype format.DType
	shape []int64
	size  int
}

// mixedSpecs covers every storage kind the artifact must carry, partial
// quantization blocks, an odd NF4 element count, a scalar and an empty tensor.
var mixedSpecs = []spec{
	{"emb.weight", format.F16, []int64{3, 5}, 30},
	{"blocks.0.ln1.weight", format.F32, []int64{4}, 16},
	{"blocks.0.att.bf", format.BF16, []int64{2, 3, 4}, 48},
	// 1400 codes + ceil(1400/128) = 11 blocks × (min, max) float16 = 44 bytes
	{"blocks.0.att.key.weight", format.Int8Block, []int64{7, 200}, 1400 + 44},
	// ceil(650/2) = 325 nibble bytes + ceil(650/64) = 11 absmax float16 = 22
	{"blocks.0.ffn.key.weight", format.NF4Block, []int64{5, 130}, 325 + 22},
	// 9 elements: 5 nibble bytes (last high nibble unused) + one absmax
	{"blocks.0.ffn.value.weight", format.NF4Block, []int64{3, 3}, 5 + 2},
	// SF4 as NF4: 105 nibble bytes + ceil(210/64) = 4 absmax float16
	{"blocks.0.att.value.weight", format.SF4Block, []int64{3, 70}, 105 + 8},
	{"scalar", format.F32, []int64{}, 4},
	{"empty", format.F16, []int64{0, 4}, 0},
	{"codes", format.U8, []int64{9}, 9},
}

// memSource builds a source of random payloads for specs; it returns the
// payloads by name too.
func memSource(t testing.TB, specs []spec, seed uint64) (*format.Source, map[string][]byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	src := &format.Source{Metadata: map[string]string{"note": "test source", "ünïcode": "✓"}}
	data := map[string][]byte{}
	for _, s := range specs {
		b := make([]byte, s.size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		tn, err := format.NewTensor(s.name, s.dtype, s.shape, format.BytesOpener(b))
		if err != nil {
			t.Fatal(err)
		}
		if tn.Size() != int64(s.size) {
			t.Fatalf("%s: format says %d bytes, the layout doc %d", s.name, tn.Size(), s.size)
		}
		src.Tensors = append(src.Tensors, tn)
		data[s.name] = b
	}
	return src, data
}

func testProvenance() Provenance {
	return Provenance{
		Tool: "rwkvkit", ToolVersion: "0.1.0-test",
		Sources: []FileDigest{{Name: "model.pth", Size: 1234,
			SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}},
		LoRAs: []LoRA{{FileDigest: FileDigest{Name: "adapter.st", Size: 99,
			SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}, Alpha: 0.75}},
		LoRAPatterns: []LoRAPattern{{Regexp: `att\.key`, Alpha: 2}, {Regexp: "ffn", Alpha: -0.5}},
		Quantization: Quantization{Int8: "0-1", NF4: "all", Plan: "NF4 layers 0-1", Device: "cpu"},
		Extra:        map[string]string{"command": "rwkvkit quantize in out --nf4 all"},
	}
}

// writeMem writes src into memory.
func writeMem(t testing.TB, src *format.Source, opts *Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, src, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll opens data and reads every tensor, returning the first error.
func readAll(data []byte) (*format.Source, error) {
	src, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	for _, t := range src.Tensors {
		r, err := t.Open()
		if err != nil {
			return src, err
		}
		_, err = io.Copy(io.Discard, r)
		r.Close()
		if err != nil {
			return src, err
		}
	}
	return src, nil
}
