package serialize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rwkvkit/rwkvkit/format"
)

// TestWalkGeneric decodes a written file as a plain sequence of msgpack
// objects, with no knowledge of the schema beyond docs/ARTIFACT.md: header
// map, bin chunks per tensor, index map, uint64 end marker, then EOF.
func TestWalkGeneric(t *testing.T) {
	src, want := memSource(t, mixedSpecs, 5)
	const chunk = 100
	data := writeMem(t, src, &Options{ChunkSize: chunk, Provenance: testProvenance()})
	br := bytes.NewReader(data) // a ByteScanner: the decoder reads no further than it must
	d := msgpack.NewDecoder(br)
	var objs []any
	var offsets []int64 // where each object starts
	for {
		offsets = append(offsets, int64(len(data)-br.Len()))
		v, err := d.DecodeInterface()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("object %d: %v", len(objs), err)
		}
		objs = append(objs, v)
	}
	hdr, ok := objs[0].(map[string]any)
	if !ok || hdr["format"] != "rwkvkit" || fmt.Sprint(hdr["format_version"]) != "1" {
		t.Fatalf("first object = %v", objs[0])
	}
	tensors := hdr["tensors"].([]any)
	i := 1
	for k, tv := range tensors {
		tm := tv.(map[string]any)
		name := tm["name"].(string)
		if fmt.Sprint(tm["offset"]) != fmt.Sprint(offsets[i]) {
			t.Errorf("%s: offset %v, object starts at %d", name, tm["offset"], offsets[i])
		}
		n := len(want[name])
		var payload []byte
		for range max(1, (n+chunk-1)/chunk) {
			b, ok := objs[i].([]byte)
			if !ok {
				t.Fatalf("%s: object %d is %T, want bin", name, i, objs[i])
			}
			payload = append(payload, b...)
			i++
		}
		if name != mixedSpecs[k].name || !bytes.Equal(payload, want[name]) {
			t.Errorf("tensor %d (%s): payload differs", k, name)
		}
	}
	if len(objs) != i+2 {
		t.Fatalf("%d objects, want %d", len(objs), i+2)
	}
	index := objs[i].(map[string]any)
	if end, ok := objs[i+1].(uint64); !ok || int64(end) != offsets[i] {
		t.Errorf("end marker %v (%T), index at %d", objs[i+1], objs[i+1], offsets[i])
	}
	if index["header_xxhash64"] != xxhash.Sum64(data[:offsets[1]]) {
		t.Errorf("header checksum %v", index["header_xxhash64"])
	}
	sums := index["tensor_xxhash64"].([]any)
	for k, s := range mixedSpecs {
		if sums[k] != xxhash.Sum64(want[s.name]) {
			t.Errorf("%s: index checksum %v", s.name, sums[k])
		}
	}
}

// python returns a Python 3 that can import msgpack, preferring the
// system's (where Debian's python3-msgpack installs).
func python(t *testing.T) string {
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import msgpack").Run() == nil {
			return path
		}
	}
	t.Skip("no python3 with the msgpack module (Debian: apt-get install python3-msgpack)")
	return ""
}

type pyWalk struct {
	FormatVersion []int64 `json:"format_version"`
	Model         map[string]any
	Provenance    map[string]any
	Tensors       []struct {
		Name     string
		DType    string `json:"dtype"`
		Shape    []int64
		Length   int
		XXHash64 string
		Quant    map[string]any
	}
	Objects int
}

// TestWalkPython has testdata/walk.py, which uses python3-msgpack and its
// own xxh64, walk and check files written here.
func TestWalkPython(t *testing.T) {
	py := python(t)
	src, want := memSource(t, mixedSpecs, 6)
	st, err := format.Open("../fixtures/rwkv-tiny/st/tiny-rwkv-7v0-834K.st")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		name  string
		src   *format.Source
		chunk int64
	}{{"mixed", src, 100}, {"tiny-rwkv-7", st, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.rkv")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := Write(f, tc.src, &Options{ChunkSize: tc.chunk, Provenance: testProvenance()}); err != nil {
				t.Fatal(err)
			}
			f.Close()
			out, err := exec.Command(py, "testdata/walk.py", path).Output()
			if err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					t.Fatalf("walk.py: %v: %s", err, ee.Stderr)
				}
				t.Fatal(err)
			}
			var w pyWalk
			if err := json.Unmarshal(out, &w); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(w.FormatVersion, []int64{FormatVersion, 0}) || len(w.Tensors) != len(tc.src.Tensors) {
				t.Fatalf("walk.py saw version %v and %d tensors", w.FormatVersion, len(w.Tensors))
			}
			for i, tn := range tc.src.Tensors {
				pt := w.Tensors[i]
				b, _ := tn.Bytes()
				if tc.name == "mixed" && !bytes.Equal(b, want[tn.Name]) {
					t.Fatal("source changed")
				}
				if pt.Name != tn.Name || pt.DType != tn.DType.String() || !slices.Equal(pt.Shape, tn.Shape) || pt.Length != len(b) {
					t.Errorf("walk.py: %+v, want %s %v %v, %d bytes", pt, tn.Name, tn.DType, tn.Shape, len(b))
				}
				if pt.XXHash64 != fmt.Sprintf("%016x", xxhash.Sum64(b)) {
					t.Errorf("%s: python xxh64 %s", tn.Name, pt.XXHash64)
				}
				if tn.DType == format.NF4Block && (fmt.Sprint(pt.Quant["block_size"]) != "64" || len(pt.Quant["table"].([]any)) != 16) {
					t.Errorf("%s: quant %v", tn.Name, pt.Quant)
				}
			}
			if tc.name == "tiny-rwkv-7" && (w.Model["version"] != "7" || w.Model["layout"] != "web-rwkv") {
				t.Errorf("model %v", w.Model)
			}
			if w.Provenance["tool"] != "rwkvkit" {
				t.Errorf("provenance %v", w.Provenance)
			}
		})
	}
}
