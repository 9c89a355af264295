package pth

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

const edgeDir = "../fixtures/pth-edge"

// expected is NAME.expected.json, written by generate.py from torch itself.
type expected struct {
	Torch   string `json:"torch"`
	Tensors []struct {
		Name  string    `json:"name"`
		DType string    `json:"dtype"`
		Shape []int64   `json:"shape"`
		Raw   [2]int64  `json:"raw"`
		F16   *[2]int64 `json:"f16"`
	} `json:"tensors"`
	Metadata map[string]string `json:"metadata"`
}

func loadExpected(t *testing.T, name string) (expected, []byte) {
	t.Helper()
	var e expected
	js, err := os.ReadFile(filepath.Join(edgeDir, name+".expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &e); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(edgeDir, name+".expected.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return e, bin
}

// TestEdgeFixtures reads every edge checkpoint to exactly the bytes torch
// gives for t.contiguous(), and its F16 cast to exactly torch's t.half().
// Exact: no tolerance.
func TestEdgeFixtures(t *testing.T) {
	for _, tc := range []struct {
		name string
		f16  bool // every tensor is floating-point, so CastF16 applies
	}{
		{"dtypes", true},
		{"legacy", true},
		{"integers", false},
		{"views", true},
		{"views_legacy", true},
		{"wrapped", true},
		{"params", true},
		{"f16special", true},
		{"bigendian", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, bin := loadExpected(t, tc.name)
			src, err := format.Open(filepath.Join(edgeDir, tc.name+".pth"))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if src.Format != "pth" {
				t.Errorf("Format = %q, want pth", src.Format)
			}
			if len(src.Tensors) != len(want.Tensors) {
				t.Fatalf("%d tensors, want %d", len(src.Tensors), len(want.Tensors))
			}
			wantMeta := want.Metadata
			if wantMeta == nil {
				wantMeta = map[string]string{}
			}
			if !reflect.DeepEqual(src.Metadata, wantMeta) {
				t.Errorf("Metadata = %v, want %v", src.Metadata, wantMeta)
			}
			var f16 *format.Source
			if tc.f16 {
				if f16, err = format.CastF16(src); err != nil {
					t.Fatal(err)
				}
			}
			for i, w := range want.Tensors {
				got := src.Tensors[i]
				if got.Name != w.Name || got.DType.String() != w.DType || !slices.Equal(got.Shape, w.Shape) {
					t.Errorf("tensor %d is %s %v %v, want %s %s %v", i, got.Name, got.DType, got.Shape, w.Name, w.DType, w.Shape)
					continue
				}
				b, err := got.Bytes()
				if err != nil {
					t.Errorf("%s: %v", w.Name, err)
					continue
				}
				if raw := bin[w.Raw[0] : w.Raw[0]+w.Raw[1]]; !bytes.Equal(b, raw) {
					t.Errorf("%s: bytes\n% x\nwant torch's\n% x", w.Name, b, raw)
				}
				if f16 == nil || w.F16 == nil {
					continue
				}
				h, err := f16.Tensors[i].Bytes()
				if err != nil {
					t.Errorf("%s: F16: %v", w.Name, err)
					continue
				}
				if d := diffU16(h, bin[w.F16[0]:w.F16[0]+w.F16[1]]); d != "" {
					t.Errorf("%s: F16 cast differs from torch's .half():\n%s", w.Name, d)
				}
			}
		})
	}
}

// diffU16 lists the float16 elements where got and want differ. Two NaNs
// of the same sign count as equal: which NaN .half() gives depends on the
// torch build. Debian's torch (scalar conversion) makes every NaN 0x7e00
// with its sign; the F16C instruction that vectorized builds use keeps the
// top 10 payload bits (as format.F32ToF16 does). Every other value, ±0,
// subnormals and ±Inf included, must be bit-identical.
func diffU16(got, want []byte) string {
	var s strings.Builder
	isNaN := func(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x03ff != 0 }
	for i := 0; i+1 < min(len(got), len(want)); i += 2 {
		g, w := binary.LittleEndian.Uint16(got[i:]), binary.LittleEndian.Uint16(want[i:])
		if g != w && !(isNaN(g) && isNaN(w) && g&0x8000 == w&0x8000) {
			fmt.Fprintf(&s, "  element %d: %#04x, torch %#04x\n", i/2, g, w)
		}
	}
	if len(got) != len(want) {
		fmt.Fprintf(&s, "  %d bytes, torch %d\n", len(got), len(want))
	}
	return s.String()
}

// TestSharedStorage checks that views of one storage share it: views.pth
// holds nine views of three storages (torch saves a view's whole storage).
func TestSharedStorage(t *testing.T) {
	f, err := os.Open(filepath.Join(edgeDir, "views.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	z, err := openZipDir(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	obj, _, l, err := z.load()
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := dictEntries(obj)
	users := map[*storage]int{}
	for _, e := range entries {
		users[e.value.(*tensorRef).st]++
	}
	if len(entries) != 9 || len(l.storages) != 3 || len(users) != 3 {
		t.Errorf("%d tensors on %d storages (%d used), want 9 on 3", len(entries), len(l.storages), len(users))
	}
	if st := l.storages["0"]; users[st] != 7 || st.nbytes != 60*4 {
		t.Errorf("storage 0: %d users, %d bytes; want 7 users of 240 bytes", users[st], st.nbytes)
	}
}

type tinyModel struct {
	Pth      string `json:"pth"`
	ST       string `json:"st"`
	Version  string `json:"version"`
	DType    string `json:"pth_dtype"`
	Layers   int    `json:"n_layer"`
	Embed    int    `json:"n_embd"`
	Heads    int    `json:"n_head"`
	HeadSize int    `json:"head_size"`
	Vocab    int    `json:"vocab"`
}

// TestTinyModels opens the five real RWKV checkpoints, checks the detected
// model against index.json, and checks every tensor against web-rwkv's own
// converter output (st/*.st): renamed, transposed and cast to F16 by
// format, the bytes must be identical.
func TestTinyModels(t *testing.T) {
	js, err := os.ReadFile("../fixtures/rwkv-tiny/index.json")
	if err != nil {
		t.Fatal(err)
	}
	var index struct{ Models []tinyModel }
	if err := json.Unmarshal(js, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Models) != 5 {
		t.Fatalf("index lists %d models, want 5", len(index.Models))
	}
	for _, m := range index.Models {
		t.Run(m.Pth, func(t *testing.T) {
			src, err := format.Open(filepath.Join("../fixtures/rwkv-tiny", m.Pth))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			info, err := format.Detect(src)
			if err != nil {
				t.Fatal(err)
			}
			if string(info.Version) != m.Version && !(m.Version == "5.1" && info.Version == format.V5_0) {
				t.Errorf("version %s, want %s", info.Version, m.Version)
			}
			if info.Layers != m.Layers || info.Embed != m.Embed || info.Heads != m.Heads ||
				info.HeadSize != m.HeadSize || info.Vocab != m.Vocab {
				t.Errorf("detected %+v, want %+v", info, m)
			}
			wantDT := map[string]format.DType{"float32": format.F32, "bfloat16": format.BF16}[m.DType]
			if dt := src.Lookup("emb.weight").DType; dt != wantDT {
				t.Errorf("emb.weight is %v, want %v", dt, wantDT)
			}
			compareST(t, src, filepath.Join("../fixtures/rwkv-tiny", m.ST))
		})
	}
}

// compareST checks src, in web-rwkv's layout and cast to F16, against the
// safetensors file web-rwkv's converter wrote. The safetensors layout is
// read here directly: 8-byte header length, JSON header, data.
func compareST(t *testing.T, src *format.Source, path string) {
	t.Helper()
	st, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(st)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(st[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	data := st[8+n:]
	web, err := format.WebRWKV(src)
	if err != nil {
		t.Fatal(err)
	}
	web, err = format.CastF16(web)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []int64  `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		seen++
		got := web.Lookup(name)
		if got == nil {
			t.Errorf("%s: missing", name)
			continue
		}
		if got.DType.String() != e.DType || !slices.Equal(got.Shape, e.Shape) {
			t.Errorf("%s: %v %v, converter wrote %s %v", name, got.DType, got.Shape, e.DType, e.Shape)
			continue
		}
		b, err := got.Bytes()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(b, data[e.Offsets[0]:e.Offsets[1]]) {
			t.Errorf("%s: bytes differ from the converter's", name)
		}
	}
	if seen != len(web.Tensors) {
		t.Errorf("%d tensors, converter wrote %d", len(web.Tensors), seen)
	}
}

// TestGatherPaths reads strided views that take each of gather's paths:
// run by run (sparse), one window (dense), several windows (a span larger
// than the tensor and than the 1 MiB window). Storage element i holds the
// float32 i, so element (i, j) of a view must hold offset + i*stride0 +
// j*stride1, computed here independently of the reader.
func TestGatherPaths(t *testing.T) {
	const n = 1 << 20 // storage elements: 4 MiB
	for _, tc := range []struct {
		name          string
		offset        int64
		shape, stride []int64
	}{
		{"sparse elements", 7, []int64{5}, []int64{2000}},
		{"sparse rows", 11, []int64{3, 4}, []int64{3000, 1}},
		{"transposed", 0, []int64{64, 32}, []int64{1, 64}},
		{"every third, several windows", 1, []int64{(n - 2) / 3}, []int64{3}},
		{"columns, several windows", 2, []int64{n / 1024, 2}, []int64{1024, 1}},
		// A window of 300006 elements (the tensor's size) ends inside the
		// run of row 75001, elements 300004 to 300006.
		{"run across a window edge", 5, []int64{100002, 3}, []int64{4, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tensorSpec{Name: "v", Key: "0", StorageType: "FloatStorage", Numel: n, Offset: tc.offset, Shape: tc.shape, Stride: tc.stride}
			src, err := Open(bytesReaderOf(checkpoint(t, stateDict(spec), map[string][]byte{"0": f32(n)})))
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.Tensors[0].Float32()
			if err != nil {
				t.Fatal(err)
			}
			cols := int64(1)
			if len(tc.shape) == 2 {
				cols = tc.shape[1]
			}
			for k, v := range got {
				i, j := int64(k)/cols, int64(k)%cols
				want := tc.offset + i*tc.stride[0]
				if len(tc.shape) == 2 {
					want += j * tc.stride[1]
				}
				if v != float32(want) {
					t.Fatalf("element %d = %v, want %d", k, v, want)
				}
			}
		})
	}
}

func bytesReaderOf(b []byte) (*bytes.Reader, int64) { return bytes.NewReader(b), int64(len(b)) }

// Tensors that read the same bytes of the file, and only they, have the
// same Region: two names of one storage (tied weights) do; another offset,
// another storage, or the same bytes seen through other strides do not.
func TestRegion(t *testing.T) {
	spec := func(name, key string, off int64, shape, stride []int64) tensorSpec {
		return tensorSpec{Name: name, Key: key, StorageType: "FloatStorage", Numel: 4, Offset: off, Shape: shape, Stride: stride}
	}
	pkl := stateDict(
		spec("emb", "0", 0, []int64{2, 2}, []int64{2, 1}),
		spec("head", "0", 0, []int64{2, 2}, []int64{2, 1}),
		spec("embT", "0", 0, []int64{2, 2}, []int64{1, 2}),
		spec("headT", "0", 0, []int64{2, 2}, []int64{1, 2}),
		spec("tail", "0", 2, []int64{2}, []int64{1}),
		spec("other", "1", 0, []int64{2, 2}, []int64{2, 1}),
	)
	src, err := openAll(checkpoint(t, pkl, map[string][]byte{"0": f32(4), "1": f32(4)}))
	if err != nil {
		t.Fatal(err)
	}
	region := map[string]string{}
	for _, x := range src.Tensors {
		if x.Region == "" {
			t.Fatalf("%s has no region", x.Name)
		}
		region[x.Name] = x.Region
	}
	same := [][2]string{{"emb", "head"}, {"embT", "headT"}}
	differ := [][2]string{{"emb", "embT"}, {"emb", "tail"}, {"emb", "other"}, {"embT", "other"}}
	for _, p := range same {
		if region[p[0]] != region[p[1]] {
			t.Errorf("%s and %s read the same bytes but have regions %q and %q", p[0], p[1], region[p[0]], region[p[1]])
		}
	}
	for _, p := range differ {
		if region[p[0]] == region[p[1]] {
			t.Errorf("%s and %s read different bytes but share region %q", p[0], p[1], region[p[0]])
		}
	}
	// torch's nine views of three storages, zip and legacy, read nine
	// different runs of bytes.
	for _, name := range []string{"views.pth", "views_legacy.pth"} {
		src, err := format.Open(filepath.Join(edgeDir, name))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, x := range src.Tensors {
			if prev, ok := seen[x.Region]; ok || x.Region == "" {
				t.Errorf("%s: %s has region %q (as %q)", name, x.Name, x.Region, prev)
			}
			seen[x.Region] = x.Name
		}
		src.Close()
	}
}
