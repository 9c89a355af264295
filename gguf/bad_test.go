package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

// gb assembles GGUF bytes field by field.
type gb struct{ b []byte }

func (g *gb) u32(v uint32) *gb  { g.b = binary.LittleEndian.AppendUint32(g.b, v); return g }
func (g *gb) u64(v uint64) *gb  { g.b = binary.LittleEndian.AppendUint64(g.b, v); return g }
func (g *gb) str(s string) *gb  { g.u64(uint64(len(s))); g.b = append(g.b, s...); return g }
func (g *gb) raw(b ...byte) *gb { g.b = append(g.b, b...); return g }

// head starts a version-3 file with nt tensors and nkv keys.
func head(nt, nkv uint64) *gb { return (&gb{}).raw('G', 'G', 'U', 'F').u32(3).u64(nt).u64(nkv) }

// kvStr appends a string metadata entry.
func (g *gb) kvStr(k, v string) *gb        { return g.str(k).u32(uint32(String)).str(v) }
func (g *gb) kvU32(k string, v uint32) *gb { return g.str(k).u32(uint32(Uint32)).u32(v) }

// tensor appends a tensor descriptor (dims in ggml order).
func (g *gb) tensor(name string, typ Type, off uint64, dims ...uint64) *gb {
	g.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		g.u64(d)
	}
	return g.u32(uint32(typ)).u64(off)
}

// data pads to the alignment and appends n zero bytes.
func (g *gb) data(n int) []byte {
	g.b = append(g.b, make([]byte, int(pad(int64(len(g.b)), 32))-len(g.b)+n)...)
	return g.b
}

// rwkv7 is the metadata an RWKV-7 file needs before its tensors.
func rwkv7(nt uint64, extra int) *gb {
	return head(nt, uint64(3+extra)).kvStr("general.architecture", "rwkv7").
		kvU32("rwkv7.embedding_length", 32).kvU32("rwkv7.wkv.head_size", 32)
}

var rejections = []struct {
	name    string
	file    []byte
	want    error
	mention string
}{
	{"empty", nil, ErrNotGGUF, "0 bytes"},
	{"three bytes", []byte("GGU"), ErrNotGGUF, ""},
	{"safetensors", []byte("\x10\x00\x00\x00\x00\x00\x00\x00{}"), ErrNotGGUF, "first bytes"},
	{"magic only", []byte("GGUF"), ErrTruncated, ""},
	{"version 1", (&gb{}).raw('G', 'G', 'U', 'F').u32(1).u32(0).u32(0).b, ErrVersion, "version"},
	{"big-endian", (&gb{}).raw('G', 'G', 'U', 'F').u32(3 << 24).u64(0).u64(0).b, ErrVersion, "big-endian"},
	{"version 4", (&gb{}).raw('G', 'G', 'U', 'F').u32(4).u64(0).u64(0).b, ErrVersion, "4"},
	{"counts cut", (&gb{}).raw('G', 'G', 'U', 'F').u32(3).u32(0).b, ErrTruncated, ""},
	{"huge key count", head(0, 1<<62).b, ErrTruncated, "metadata entries"},
	{"huge tensor count", head(1<<60, 0).b, ErrTruncated, "tensors"},
	{"key past end", head(0, 1).u64(1 << 40).u64(0).b, ErrTruncated, "metadata key"},
	{"value type 13", head(0, 1).str("k").u32(13).u32(0).b, ErrMalformed, "value type 13"},
	{"array of arrays", head(0, 1).str("k").u32(uint32(Array)).u32(uint32(Array)).u64(1).b, ErrMalformed, "array of array"},
	{"array count huge", head(0, 1).str("k").u32(uint32(Array)).u32(uint32(Uint32)).u64(1 << 61).b, ErrTruncated, "elements"},
	{"array of strings cut", head(0, 1).str("k").u32(uint32(Array)).u32(uint32(String)).u64(2).str("a").u64(5).b, ErrTruncated, ""},
	{"bool 2", head(0, 1).str("k").u32(uint32(Bool)).raw(2).b, ErrMalformed, "boolean"},
	{"duplicate key", head(0, 2).kvU32("k", 1).kvU32("k", 2).b, ErrMalformed, `"k" appears twice`},
	{"alignment 0", head(0, 1).kvU32("general.alignment", 0).b, ErrMalformed, "alignment"},
	{"alignment 48", head(0, 1).kvU32("general.alignment", 48).b, ErrMalformed, "alignment"},
	{"alignment as string", head(0, 1).kvStr("general.alignment", "32").b, ErrMalformed, "alignment"},
	{"long tensor name", head(1, 0).tensor(strings.Repeat("x", 64), TypeF32, 0, 1).data(4), ErrMalformed, "64 bytes"},
	{"five dimensions", head(1, 0).tensor("t", TypeF32, 0, 1, 1, 1, 1, 1).data(4), ErrMalformed, "5 dimensions"},
	{"dimension beyond int64", head(1, 0).tensor("t", TypeF32, 0, 1<<63).data(4), ErrMalformed, "overflows"},
	{"element count overflow", head(1, 0).tensor("t", TypeF32, 0, 1<<32, 1<<32).data(4), ErrMalformed, "overflows"},
	{"byte size overflow", head(1, 0).tensor("t", TypeF32, 0, 1<<62).data(4), ErrMalformed, "overflows"},
	{"unknown type", head(1, 0).tensor("t", 99, 0, 1).data(4), ErrMalformed, "ggml type 99"},
	{"partial block", head(1, 0).tensor("t", TypeQ4_0, 0, 31).data(18), ErrMalformed, "whole Q4_0 blocks"},
	{"offset hole", head(1, 0).tensor("t", TypeF32, 32, 1).data(64), ErrMalformed, "expected 0"},
	{"offsets overlap", head(2, 0).tensor("a", TypeF32, 0, 8).tensor("b", TypeF32, 0, 8).data(64), ErrMalformed, `"b": data at offset 0, expected 32`},
	{"offset beyond int64", head(1, 0).tensor("t", TypeF32, 1<<63, 1).data(4), ErrMalformed, "offset"},
	{"data past the end", head(1, 0).tensor("t", TypeF32, 0, 100).data(4), ErrTruncated, "400 bytes"},
	{"duplicate tensor", head(2, 0).tensor("t", TypeF32, 0, 8).tensor("t", TypeF32, 32, 8).data(64), ErrMalformed, `"t" appears twice`},
	{"not RWKV", head(0, 1).kvStr("general.architecture", "llama").b, ErrNotRWKV, `"llama"`},
	{"no architecture", head(0, 0).b, ErrNotRWKV, "general.architecture"},
	{"no embedding length", head(0, 1).kvStr("general.architecture", "rwkv7").b, ErrNotRWKV, "embedding_length"},
	{"embedding length as string", head(0, 3).kvStr("general.architecture", "rwkv6").kvStr("rwkv6.embedding_length", "64").
		kvU32("rwkv6.wkv.head_size", 8).b, ErrMalformed, "embedding_length"},
	{"heads do not divide", head(0, 3).kvStr("general.architecture", "rwkv7").kvU32("rwkv7.embedding_length", 32).
		kvU32("rwkv7.wkv.head_size", 24).b, ErrMalformed, "do not divide"},
	{"IQ2_XXS tensor", rwkv7(1, 0).tensor("blk.0.time_mix_key.weight", 16, 0, 256, 32).data(66 * 32), ErrUnsupported, "IQ2_XXS"},
	{"foreign tensor", rwkv7(1, 0).tensor("blk.0.attn_q.weight", TypeF32, 0, 32, 32).data(4096), ErrNotRWKV, "attn_q"},
	{"fused of five", rwkv7(1, 0).tensor("blk.0.time_mix_lerp_fused.weight", TypeF32, 0, 32, 1, 1, 5).data(640), ErrNotRWKV, "lerp_fused"},
	{"vector too long", rwkv7(1, 0).tensor("blk.0.time_mix_w0.weight", TypeF32, 0, 33).data(132), ErrNotRWKV, "time_mix_w0"},
}

// sentinels are the errors every rejection wraps one of.
var sentinels = []error{ErrNotGGUF, ErrVersion, ErrTruncated, ErrMalformed, ErrUnsupported, ErrNotRWKV}

func TestRejections(t *testing.T) {
	for _, tc := range rejections {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tc.file), int64(len(tc.file)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

// smallModel is a valid GGUF of a small synthetic RWKV-7, for seeds.
func smallModel(t testing.TB, typ Type) []byte {
	t.Helper()
	src, err := synth.RWKV7(synth.Config{Layers: 2, Embed: 32, Vocab: 256, HeadSize: 32, DecayLoRA: 32, ALoRA: 32, VLoRA: 32, GLoRA: 32}, format.BF16, 1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, src, &Options{Type: typ}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestTruncated cuts a real file at many points: every cut is refused as
// truncated, never read as a smaller model.
func TestTruncated(t *testing.T) {
	b := smallModel(t, TypeQ8_0)
	for n := 0; n < len(b); n += 1 + n/3 {
		_, err := Open(bytes.NewReader(b[:n]), int64(n))
		if n < 4 && !errors.Is(err, ErrNotGGUF) || n >= 4 && !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d of %d bytes: %v", n, len(b), err)
		}
	}
}

// FuzzOpen checks, for any input: no panic; every rejection wraps one of
// the sentinel errors; every tensor of an accepted file reads exactly its
// size; and Open and the reads allocate within a small multiple of the
// input (a dequantized block of Q2_K is 12 times its bytes, plus one chunk).
func FuzzOpen(f *testing.F) {
	for _, typ := range []Type{TypeF32, TypeQ8_0} {
		f.Add(smallModel(f, typ))
	}
	for _, tc := range rejections {
		f.Add(tc.file)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		src, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("unclassified error: %v", err)
		}
		for _, tn := range src.Tensors {
			b, err := tn.Bytes()
			if err != nil {
				t.Fatalf("tensor %q: %v", tn.Name, err)
			}
			if int64(len(b)) != tn.Size() {
				t.Fatalf("tensor %q: %d bytes, size %d", tn.Name, len(b), tn.Size())
			}
			if tn.DType == format.F32 {
				for i := 0; i+4 <= len(b); i += 4 {
					_ = math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
				}
			}
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(64*len(data))+4<<20 {
			t.Fatalf("allocated %d bytes for a %d-byte input", alloc, len(data))
		}
	})
}

// TestVersion2 reads a version-2 file: the layout of version 3 (which
// only added big-endian files, refused here).
func TestVersion2(t *testing.T) {
	b := smallModel(t, TypeF16)
	binary.LittleEndian.PutUint32(b[4:], 2)
	src, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := format.Detect(src); err != nil || info.Version != format.V7 || info.Layers != 2 {
		t.Errorf("version 2 file: %+v, %v", info, err)
	}
}

// Read through format.ReadPath, a file that is not a GGUF is named in the
// error, which keeps the reason.
func TestReadPathNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not.gguf")
	if err := os.WriteFile(path, []byte("PK\x03\x04 not a GGUF at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := format.ReadPath(path, ReadFile)
	if !errors.Is(err, ErrNotGGUF) || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("ReadPath = %v, want ErrNotGGUF naming %s", err, path)
	}
}
