package gguf_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gguf"
	_ "github.com/rwkvkit/rwkvkit/pth"
	"github.com/rwkvkit/rwkvkit/runner"
	"github.com/rwkvkit/rwkvkit/verify"
)

// The fixtures of fixtures/gguf were made by the real llama.cpp (see
// generate.sh there): llama.cpp loaded and ran the GGUFs rwkvkit wrote from
// the tiny models, llama-quantize quantized the F32 ones, and llama.cpp's
// Python reader (gguf-py) described every file in manifest.json.
const (
	fixtureDir = "../fixtures/gguf"
	tinyDir    = "../fixtures/rwkv-tiny"
)

var tinyModels = []string{"tiny-rwkv-6v0-1m", "tiny-rwkv-7v0-834K"}

// llamaQuantized are the llama-quantize outputs kept for each model.
var llamaQuantized = map[string][]string{
	"tiny-rwkv-6v0-1m":   {"Q4_0", "Q4_K_M"},
	"tiny-rwkv-7v0-834K": {"Q8_0", "Q4_0", "Q4_K_M", "Q6_K"},
}

type manifestValue struct {
	Type   string          `json:"type"`
	Elem   string          `json:"elem"`
	Len    int             `json:"len"`
	SHA256 string          `json:"sha256"`
	Value  json.RawMessage `json:"value"`
}

type manifestFile struct {
	File    string                   `json:"file"`
	SHA256  string                   `json:"sha256"`
	KV      map[string]manifestValue `json:"kv"`
	Tensors [][]json.RawMessage      `json:"tensors"` // [name, type, dims, sha256]
}

var manifest = sync.OnceValues(func() (map[string]manifestFile, error) {
	b, err := os.ReadFile(filepath.Join(fixtureDir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var files []manifestFile
	if err := json.Unmarshal(b, &files); err != nil {
		return nil, err
	}
	m := map[string]manifestFile{}
	for _, f := range files {
		m[f.File] = f
	}
	return m, nil
})

func manifestEntry(t testing.TB, file string) manifestFile {
	t.Helper()
	m, err := manifest()
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m[file]
	if !ok {
		t.Fatalf("manifest.json has no %s", file)
	}
	return e
}

// written caches the GGUFs the writer makes from the tiny models.
var written sync.Map

func writeTiny(t testing.TB, model, typ string) []byte {
	t.Helper()
	key := model + "." + typ
	if b, ok := written.Load(key); ok {
		return b.([]byte)
	}
	tt, err := gguf.ParseType(typ)
	if err != nil {
		t.Fatal(err)
	}
	src, err := format.Open(filepath.Join(tinyDir, model+".pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var buf bytes.Buffer
	if err := gguf.Write(&buf, src, &gguf.Options{Type: tt, Name: model}); err != nil {
		t.Fatal(err)
	}
	written.Store(key, buf.Bytes())
	return buf.Bytes()
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// valueHash hashes an array as manifest.py does: each element's encoding
// (a string's bytes, a number's little-endian bytes) after its length.
func valueHash(v gguf.Value) string {
	h := sha256.New()
	part := func(b []byte) {
		h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	switch x := v.V.(type) {
	case []string:
		for _, s := range x {
			part([]byte(s))
		}
	case []int32:
		for _, i := range x {
			part(binary.LittleEndian.AppendUint32(nil, uint32(i)))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkAgainstManifest compares ReadFile's view of file with gguf-py's.
func checkAgainstManifest(t *testing.T, b []byte, e manifestFile) {
	t.Helper()
	f, err := gguf.ReadFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.KV) != len(e.KV) {
		t.Errorf("%d metadata keys, gguf-py reads %d", len(f.KV), len(e.KV))
	}
	for _, kv := range f.KV {
		want, ok := e.KV[kv.Key]
		if !ok {
			t.Errorf("key %s: gguf-py does not have it", kv.Key)
			continue
		}
		v := kv.Value
		if v.Type == gguf.Array {
			if want.Type != "array" || want.Len != v.Len() || want.SHA256 != valueHash(v) {
				t.Errorf("key %s: %v (hash %s), gguf-py reads %d × %s (hash %s)", kv.Key, v, valueHash(v)[:12], want.Len, want.Elem, want.SHA256[:min(12, len(want.SHA256))])
			}
			continue
		}
		got, _ := json.Marshal(v.V)
		if x, ok := v.V.(float32); ok { // gguf-py prints the float32 as a float64
			var w float64
			if json.Unmarshal(want.Value, &w) == nil && float32(w) == x {
				got = want.Value
			}
		}
		if want.Type != typeName(v.Type) || !jsonEqual(got, want.Value) {
			t.Errorf("key %s: %s %s, gguf-py reads %s %s", kv.Key, typeName(v.Type), got, want.Type, want.Value)
		}
	}
	if len(f.Tensors) != len(e.Tensors) {
		t.Fatalf("%d tensors, gguf-py reads %d", len(f.Tensors), len(e.Tensors))
	}
	for i, ti := range f.Tensors {
		var name, typ, hash string
		var dims []int64
		w := e.Tensors[i]
		if len(w) != 4 || json.Unmarshal(w[0], &name) != nil || json.Unmarshal(w[1], &typ) != nil ||
			json.Unmarshal(w[2], &dims) != nil || json.Unmarshal(w[3], &hash) != nil {
			t.Fatalf("manifest tensor %d: %s", i, w)
		}
		data := b[f.DataOffset+ti.Offset : f.DataOffset+ti.Offset+ti.Size]
		if ti.Name != name || ti.Type.String() != typ || !slices.Equal(ti.Dims, dims) || sha(data) != hash {
			t.Errorf("tensor %d: %s %v %v (data %s), gguf-py reads %s %s %v (data %s)", i, ti.Name, ti.Type, ti.Dims, sha(data)[:12], name, typ, dims, hash[:12])
		}
	}
}

func typeName(t gguf.ValueType) string {
	return map[gguf.ValueType]string{gguf.Uint8: "uint8", gguf.Int8: "int8", gguf.Uint16: "uint16", gguf.Int16: "int16",
		gguf.Uint32: "uint32", gguf.Int32: "int32", gguf.Float32: "float32", gguf.Bool: "bool", gguf.String: "string",
		gguf.Uint64: "uint64", gguf.Int64: "int64", gguf.Float64: "float64"}[t]
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}

// TestWriteAsLlamaCppAccepted writes the tiny RWKV-6 and RWKV-7 as F32, F16
// and Q8_0 GGUF and checks every key and tensor (name, type, dimensions,
// bytes) against gguf-py's reading of the files the real llama.cpp loaded
// and ran, and the whole file against its hash.
func TestWriteAsLlamaCppAccepted(t *testing.T) {
	for _, m := range tinyModels {
		for _, typ := range []string{"f32", "f16", "q8_0"} {
			t.Run(m+"."+typ, func(t *testing.T) {
				b := writeTiny(t, m, typ)
				e := manifestEntry(t, m+"."+typ+".gguf")
				checkAgainstManifest(t, b, e)
				if sha(b) != e.SHA256 {
					t.Errorf("file hash %s, the file llama.cpp ran has %s", sha(b), e.SHA256)
				}
			})
		}
	}
}

// llamaQuantizedFile rebuilds llama-quantize's output from rwkvkit's F32
// GGUF (llama-quantize copies the F32 tensors unchanged) and the kept rest
// (patch.py), and checks it against the hash of the real output.
func llamaQuantizedFile(t testing.TB, model, q string) []byte {
	t.Helper()
	name := model + "." + q
	if b, ok := written.Load(name); ok {
		return b.([]byte)
	}
	f32 := writeTiny(t, model, "f32")
	base, err := gguf.ReadFile(bytes.NewReader(f32), int64(len(f32)))
	if err != nil {
		t.Fatal(err)
	}
	zf, err := os.Open(filepath.Join(fixtureDir, name+".patch.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer zf.Close()
	zr, err := gzip.NewReader(zf)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	// The header alone: its tensors point past its end, so it is read as
	// the beginning of a file as long as the whole.
	hdr, err := gguf.ReadFile(bytes.NewReader(patch), 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	out := slices.Clone(patch[:hdr.DataOffset])
	rest := patch[hdr.DataOffset:]
	for _, ti := range hdr.Tensors {
		out = append(out, make([]byte, hdr.DataOffset+ti.Offset-int64(len(out)))...)
		if ti.Type != gguf.TypeF32 {
			out, rest = append(out, rest[:ti.Size]...), rest[ti.Size:]
			continue
		}
		i := slices.IndexFunc(base.Tensors, func(b gguf.TensorInfo) bool { return b.Name == ti.Name })
		if i < 0 || !slices.Equal(base.Tensors[i].Dims, ti.Dims) {
			t.Fatalf("%s: F32 tensor %s is not in the F32 GGUF", name, ti.Name)
		}
		bt := base.Tensors[i]
		out = append(out, f32[base.DataOffset+bt.Offset:base.DataOffset+bt.Offset+bt.Size]...)
	}
	out = append(out, make([]byte, (32-len(out)%32)%32)...)
	if want := manifestEntry(t, name+".gguf").SHA256; sha(out) != want {
		t.Fatalf("%s rebuilt with hash %s, llama-quantize's has %s", name, sha(out), want)
	}
	written.Store(name, out)
	return out
}

// TestReadLlamaQuantized reads llama-quantize's files as gguf-py does.
func TestReadLlamaQuantized(t *testing.T) {
	for _, m := range tinyModels {
		for _, q := range llamaQuantized[m] {
			t.Run(m+"."+q, func(t *testing.T) {
				b := llamaQuantizedFile(t, m, q)
				checkAgainstManifest(t, b, manifestEntry(t, m+"."+q+".gguf"))
			})
		}
	}
}

func readRows(t testing.TB, path string, vocab int) [][]float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%(4*vocab) != 0 {
		t.Fatalf("%s: %d bytes", path, len(b))
	}
	var rows [][]float32
	for ; len(b) > 0; b = b[4*vocab:] {
		row := make([]float32, vocab)
		for i := range row {
			row[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		rows = append(rows, row)
	}
	return rows
}

func tokens(t testing.TB) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "tokens.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, len(b))
	for i, c := range b {
		ids[i] = int(c)
	}
	return ids
}

// runGGUF runs the tokens one at a time through the CPU engine.
func runGGUF(t testing.TB, b []byte, toks []int) [][]float32 {
	t.Helper()
	src, err := gguf.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := runner.Load(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float32
	for _, tok := range toks {
		l, err := m.Step(s, tok)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, l)
	}
	return rows
}

// TestRunnerMatchesLlamaCpp runs every GGUF on rwkvkit's CPU engine and
// compares with llama.cpp's logits on the same file and tokens. The
// dequantized weights are exactly ggml's; what differs is arithmetic order
// and llama.cpp's activations, which it rounds to float16 for F16 weights
// and to 8-bit blocks for quantized ones before each product. The bounds
// are the measured differences with some room (see fixtures/README.md).
func TestRunnerMatchesLlamaCpp(t *testing.T) {
	toks := tokens(t)
	type file struct {
		model, typ string
		tol        float64
		b          func() []byte
	}
	var files []file
	for _, m := range tinyModels {
		for _, typ := range []string{"f32", "f16", "q8_0"} {
			files = append(files, file{m, typ, tolerance[typ], func() []byte { return writeTiny(t, m, typ) }})
		}
		for _, q := range llamaQuantized[m] {
			files = append(files, file{m, q, tolerance[q], func() []byte { return llamaQuantizedFile(t, m, q) }})
		}
	}
	for _, f := range files {
		t.Run(f.model+"."+f.typ, func(t *testing.T) {
			want := readRows(t, filepath.Join(fixtureDir, f.model+"."+f.typ+".logits.f32"), 256)
			if len(want) != len(toks) {
				t.Fatalf("%d rows of llama.cpp logits for %d tokens", len(want), len(toks))
			}
			got := runGGUF(t, f.b(), toks)
			vs, err := verify.Compare(got, want, toks, false)
			if err != nil {
				t.Fatal(err)
			}
			// How far llama.cpp's own logits moved from its F32 ones: what
			// the quantization did, which rwkvkit must reproduce.
			f32 := readRows(t, filepath.Join(fixtureDir, f.model+".f32.logits.f32"), 256)
			qm, err := verify.Compare(want, f32, toks, false)
			if err != nil {
				t.Fatal(err)
			}
			d, q := vs.MaxAbsDiff, qm.MaxAbsDiff
			t.Logf("max |rwkvkit − llama.cpp| = %.3g (llama.cpp against its F32: %.3g); top token agrees at %.0f%% of positions", d, q, vs.Top1Percent)
			if vs.Top1Percent != 100 {
				t.Errorf("top token agrees at %.0f%% of positions, want all", vs.Top1Percent)
			}
			if f.typ != "f32" && f.typ != "f16" && d >= q {
				t.Errorf("rwkvkit is %.3g from llama.cpp, as far as the quantization moved llama.cpp (%.3g)", d, q)
			}
			if d > f.tol {
				t.Errorf("max |rwkvkit − llama.cpp| = %.3g, want ≤ %g", d, f.tol)
			}
		})
	}
}

// tolerance bounds max |rwkvkit − llama.cpp| per file type.
var tolerance = map[string]float64{
	"f32": 1e-5, "f16": 1e-5, // float16 changes only a few tiny weights of these models
	"q8_0": 0.1, "Q8_0": 0.025, "Q6_K": 0.025, "Q4_0": 0.25, "Q4_K_M": 0.3,
}
