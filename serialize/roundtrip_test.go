package serialize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	_ "github.com/rwkvkit/rwkvkit/safetensors"
)

func TestRoundTrip(t *testing.T) {
	model := &format.ModelInfo{Version: format.V7, Layout: format.LayoutWebRWKV, Layers: 1, Embed: 5,
		Heads: 1, HeadSize: 5, Vocab: 3, FFN: 20, DecayLoRA: 4, ALoRA: 4, VLoRA: 2, GLoRA: 8, Params: 1234}
	for _, chunk := range []int64{0, 1, 7, 128, 1444} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			src, want := memSource(t, mixedSpecs, 1)
			opts := &Options{Model: model, Provenance: testProvenance(), ChunkSize: chunk}
			data := writeMem(t, src, opts)
			got, err := Open(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if got.Format != "rkv" {
				t.Errorf("Format = %q", got.Format)
			}
			if len(got.Tensors) != len(mixedSpecs) {
				t.Fatalf("%d tensors, want %d", len(got.Tensors), len(mixedSpecs))
			}
			for i, s := range mixedSpecs {
				g := got.Tensors[i]
				if g.Name != s.name || g.DType != s.dtype || !slices.Equal(g.Shape, s.shape) {
					t.Errorf("tensor %d = %s %v %v, want %s %v %v", i, g.Name, g.DType, g.Shape, s.name, s.dtype, s.shape)
				}
				b, err := g.Bytes()
				if err != nil {
					t.Errorf("%s: %v", s.name, err)
				} else if !bytes.Equal(b, want[s.name]) {
					t.Errorf("%s: bytes differ", s.name)
				}
			}
			if !reflect.DeepEqual(got.Metadata, src.Metadata) {
				t.Errorf("metadata = %v, want %v", got.Metadata, src.Metadata)
			}
			h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.Model, model) {
				t.Errorf("model = %+v, want %+v", h.Model, model)
			}
			if !reflect.DeepEqual(h.Provenance, testProvenance()) {
				t.Errorf("provenance = %+v, want %+v", h.Provenance, testProvenance())
			}
			if h.Major != FormatVersion || h.Minor != 0 { // a model artifact uses nothing past 1.0
				t.Errorf("version %d.%d", h.Major, h.Minor)
			}
			for _, ti := range h.Tensors {
				switch ti.DType {
				case format.Int8Block:
					if ti.BlockSize != 128 || ti.Table != nil {
						t.Errorf("%s: block %d, table %v", ti.Name, ti.BlockSize, ti.Table)
					}
				case format.NF4Block:
					// Values from docs/web-rwkv-layout.md §2, spot-checked.
					if ti.BlockSize != 64 || len(ti.Table) != 16 || ti.Table[1] != -0.6961928009986877 || ti.Table[8] != 0.07958029955625534 {
						t.Errorf("%s: block %d, table %v", ti.Name, ti.BlockSize, ti.Table)
					}
				case format.SF4Block:
					// The Student-t table (quantize's TestSF4Table checks it
					// against t₅ quantiles), spot-checked.
					if ti.BlockSize != 64 || len(ti.Table) != 16 || ti.Table[0] != -1 || ti.Table[7] != 0 || ti.Table[8] != 0.065513074 {
						t.Errorf("%s: block %d, table %v", ti.Name, ti.BlockSize, ti.Table)
					}
				default:
					if ti.BlockSize != 0 || ti.Table != nil {
						t.Errorf("%s: quantization parameters on %v", ti.Name, ti.DType)
					}
				}
			}
		})
	}
}

// TestRoundTripFixtures stores the tiny real models' web-rwkv files and
// checks that every tensor comes back byte for byte.
func TestRoundTripFixtures(t *testing.T) {
	paths, _ := filepath.Glob("../fixtures/rwkv-tiny/st/*.st")
	if len(paths) == 0 {
		t.Fatal("no fixtures under ../fixtures/rwkv-tiny/st")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			st, err := format.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			out := filepath.Join(t.TempDir(), "m.rkv")
			d, err := DigestFile(p)
			if err != nil {
				t.Fatal(err)
			}
			opts := &Options{Provenance: Provenance{Tool: "rwkvkit", Sources: []FileDigest{d}}}
			if err := WriteFile(context.Background(), out, st, false, opts); err != nil {
				t.Fatal(err)
			}
			rkv, err := format.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer rkv.Close()
			if rkv.Format != "rkv" || len(rkv.Tensors) != len(st.Tensors) {
				t.Fatalf("format %q with %d tensors, want rkv with %d", rkv.Format, len(rkv.Tensors), len(st.Tensors))
			}
			for i, a := range st.Tensors {
				b := rkv.Tensors[i]
				ab, err1 := a.Bytes()
				bb, err2 := b.Bytes()
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if a.Name != b.Name || a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || !bytes.Equal(ab, bb) {
					t.Errorf("tensor %s differs", a.Name)
				}
			}
			want, err := format.Detect(st)
			if err != nil {
				t.Fatal(err)
			}
			h, err := ReadHeaderFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if h.Model == nil || *h.Model != want {
				t.Errorf("model = %+v, want %+v", h.Model, want)
			}
			if got, _ := format.Detect(rkv); got != want {
				t.Errorf("detected from the artifact: %+v, want %+v", got, want)
			}
			if len(h.Provenance.Sources) != 1 || h.Provenance.Sources[0] != d {
				t.Errorf("sources = %+v, want %+v", h.Provenance.Sources, d)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.rkv")
	src, _ := memSource(t, mixedSpecs, 2)
	var calls, last, total int64
	opts := &Options{Progress: func(w, tot int64) {
		if w < last {
			t.Errorf("progress went back from %d to %d", last, w)
		}
		calls++
		last, total = w, tot
	}}
	if err := WriteFile(context.Background(), path, src, false, opts); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last != fi.Size() || total != fi.Size() {
		t.Errorf("progress ended at %d of %d after %d calls; file is %d bytes", last, total, calls, fi.Size())
	}
	err = WriteFile(context.Background(), path, src, false, nil)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("second write without force: %v, want fs.ErrExist", err)
	}
	src2, want := memSource(t, mixedSpecs, 3)
	if err := WriteFile(context.Background(), path, src2, true, nil); err != nil {
		t.Fatal(err)
	}
	got, err := format.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	b, err := got.Lookup("blocks.0.att.key.weight").Bytes()
	if err != nil || !bytes.Equal(b, want["blocks.0.att.key.weight"]) {
		t.Errorf("forced rewrite not in place: %v", err)
	}

	// A source that fails mid-way leaves the old file and no temporary one.
	bad := &format.Source{Tensors: append([]*format.Tensor{}, src.Tensors...)}
	bt, _ := format.NewTensor("broken", format.F32, []int64{1000}, format.BytesOpener(make([]byte, 10)))
	bad.Tensors = append(bad.Tensors, bt)
	err = WriteFile(context.Background(), path, bad, true, nil)
	if err == nil || !errors.Is(err, format.ErrShortData) || !bytes.Contains([]byte(err.Error()), []byte(`"broken"`)) {
		t.Errorf("short source: %v, want ErrShortData naming the tensor", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("folder holds %d entries after a failed write, want 1", len(ents))
	}
	if _, err := readAll(mustRead(t, path)); err != nil {
		t.Errorf("old file damaged: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteFile(ctx, filepath.Join(dir, "never.rkv"), src, false, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled write: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteRefuses(t *testing.T) {
	long := func(n int) *format.Tensor {
		tn, _ := format.NewTensor("x", format.F16, []int64{2}, format.BytesOpener(make([]byte, n)))
		return tn
	}
	dup, _ := memSource(t, mixedSpecs[:2], 1)
	dup.Tensors = append(dup.Tensors, dup.Tensors[0])
	tests := []struct {
		name string
		src  *format.Source
		opts *Options
	}{
		{"nil source", nil, nil},
		{"duplicate name", dup, nil},
		{"source too long", &format.Source{Tensors: []*format.Tensor{long(5)}}, nil},
		{"source too short", &format.Source{Tensors: []*format.Tensor{long(3)}}, nil},
		{"chunk too big", &format.Source{}, &Options{ChunkSize: 1 << 32}},
		{"bad sha256", &format.Source{}, &Options{Provenance: Provenance{Sources: []FileDigest{{Name: "a", SHA256: "xyz"}}}}},
		{"metadata not UTF-8", &format.Source{Metadata: map[string]string{"k": "\xff"}}, nil},
	}
	for _, tc := range tests {
		if err := Write(io.Discard, tc.src, tc.opts); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// A state artifact records its state description and minor version 1.1,
// and no model, even when the source looks like one.
func TestStateHeader(t *testing.T) {
	src, _ := memSource(t, mixedSpecs, 1)
	st := &StateInfo{Version: format.V6, Layout: format.LayoutRWKVLM, Layers: 3, Embed: 8, Heads: 2, HeadSize: 4}
	data := writeMem(t, src, &Options{State: st, Model: &format.ModelInfo{Version: format.V7}})
	h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Model != nil || !reflect.DeepEqual(h.State, st) || h.Major != 1 || h.Minor != 1 {
		t.Errorf("header: model %+v, state %+v, version %d.%d; want no model, state %+v, version 1.1", h.Model, h.State, h.Major, h.Minor, st)
	}
	bad := *st
	bad.Layers = 0
	if err := Write(io.Discard, src, &Options{State: &bad}); err == nil {
		t.Error("a state of 0 layers was written")
	}
}
