package safetensors

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/format"
)

// TestWriteFixtures writes each of web-rwkv's converter outputs back from
// its tensors and expects the identical file, header padding included.
func TestWriteFixtures(t *testing.T) {
	for _, path := range fixtures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			src, err := open(raw)
			if err != nil {
				t.Fatal(err)
			}
			// Shuffle, so that the order comes from the writer's rule and not
			// from the reader handing the tensors over in file order.
			r := rand.New(rand.NewPCG(1, 2))
			r.Shuffle(len(src.Tensors), func(i, j int) {
				src.Tensors[i], src.Tensors[j] = src.Tensors[j], src.Tensors[i]
			})
			var buf bytes.Buffer
			if err := Write(&buf, src, nil); err != nil {
				t.Fatal(err)
			}
			if got := buf.Bytes(); !bytes.Equal(got, raw) {
				i := 0
				for i < min(len(got), len(raw)) && got[i] == raw[i] {
					i++
				}
				t.Fatalf("written %d bytes, fixture %d; first difference at byte %d: %q vs %q",
					len(got), len(raw), i, got[i:min(len(got), i+40)], raw[i:min(len(raw), i+40)])
			}
		})
	}
}

func memTensor(t *testing.T, name string, dt format.DType, shape []int64, seed uint64) (*format.Tensor, []byte) {
	t.Helper()
	n, err := format.NumElements(shape)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, n*int64(dt.Size()))
	r := rand.New(rand.NewPCG(seed, 0))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	tt, err := format.NewTensor(name, dt, shape, format.BytesOpener(data))
	if err != nil {
		t.Fatal(err)
	}
	return tt, data
}

// TestRoundTrip writes tensors of mixed dtypes and reads them back: order
// is descending dtype alignment then name, every tensor starts at a file
// offset that is a multiple of its element size, and bytes come back equal.
func TestRoundTrip(t *testing.T) {
	specs := []struct {
		name  string
		dtype format.DType
		shape []int64
	}{
		{"u8.odd", format.U8, []int64{7}},
		{"f16.b", format.F16, []int64{3, 3}},
		{"scalar", format.F64, []int64{}},
		{"bf16", format.BF16, []int64{5}},
		{"empty", format.F32, []int64{0, 4}},
		{"i8", format.I8, []int64{3}},
		{"f32", format.F32, []int64{2, 3}},
		{"f16.a", format.F16, []int64{1}},
		{"i64", format.I64, []int64{2}},
		{"flag", format.Bool, []int64{1}},
	}
	// The reference dtype order (descending): U64 I64 F64 F32 BF16 F16 I8 U8 BOOL.
	wantOrder := []string{"i64", "scalar", "empty", "f32", "bf16", "f16.a", "f16.b", "i8", "u8.odd", "flag"}
	src := &format.Source{}
	data := map[string][]byte{}
	for i, s := range specs {
		tt, d := memTensor(t, s.name, s.dtype, s.shape, uint64(i))
		src.Tensors = append(src.Tensors, tt)
		data[s.name] = d
	}
	var buf bytes.Buffer
	if err := Write(&buf, src, nil); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 || raw[8] != '{' {
		t.Errorf("header length %d (want a multiple of 8), first byte %q (want '{')", n, raw[8])
	}
	back, err := open(raw)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tt := range back.Tensors {
		names = append(names, tt.Name)
		orig := src.Lookup(tt.Name)
		if tt.DType != orig.DType || !slices.Equal(tt.Shape, orig.Shape) {
			t.Errorf("%s: %v %v, want %v %v", tt.Name, tt.DType, tt.Shape, orig.DType, orig.Shape)
		}
		b, err := tt.Bytes()
		if err != nil || !bytes.Equal(b, data[tt.Name]) {
			t.Errorf("%s: bytes differ (%v)", tt.Name, err)
		}
	}
	if !slices.Equal(names, wantOrder) {
		t.Errorf("order %q, want %q", names, wantOrder)
	}
	// Each tensor's absolute offset: header end plus the sizes before it.
	off := int64(8 + n)
	for _, tt := range back.Tensors {
		if off%int64(tt.DType.Size()) != 0 {
			t.Errorf("%s (%v) starts at file offset %d, not aligned", tt.Name, tt.DType, off)
		}
		off += tt.Size()
	}
	if !mapsEqual(back.Metadata, map[string]string{"format": "pt"}) {
		t.Errorf("metadata %v, want format=pt", back.Metadata)
	}
}

func TestWriteHeader(t *testing.T) {
	one, _ := memTensor(t, "w", format.F16, []int64{2}, 1)
	tests := []struct {
		name string
		opts *Options
		want string // the header, padding included
	}{
		{"default metadata", nil, `{"__metadata__":{"format":"pt"},"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}   `},
		{"no metadata", &Options{Metadata: map[string]string{}}, `{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}  `},
		{"sorted metadata", &Options{Metadata: map[string]string{"z": "1", "a": "é\"\n"}}, `{"__metadata__":{"a":"é\"\n","z":"1"},"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}    `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, &format.Source{Tensors: []*format.Tensor{one}}, tc.opts); err != nil {
				t.Fatal(err)
			}
			raw := buf.Bytes()
			n := binary.LittleEndian.Uint64(raw)
			if got := string(raw[8 : 8+n]); got != tc.want {
				t.Errorf("header\n%q\nwant\n%q", got, tc.want)
			}
			if len(raw) != 8+int(n)+4 {
				t.Errorf("file is %d bytes, want %d", len(raw), 8+n+4)
			}
		})
	}
}

// TestAppendString checks the escaping against serde_json's rules (the
// reference writer's encoder): short escapes for \b \f \n \r \t, \u00xx in
// lower case for other control bytes, nothing else escaped.
func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"blocks.0.att.key.weight", `"blocks.0.att.key.weight"`},
		{"a\"b\\c", `"a\"b\\c"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x1f\x7f", `"\u0000\u001f` + "\x7f" + `"`},
		{"<&>é\u2028", "\"<&>é\u2028\""},
	}
	for _, tc := range tests {
		if got := string(appendString(nil, tc.in)); got != tc.want {
			t.Errorf("appendString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// badTensor is a tensor whose reader yields n bytes (and then err) whatever
// its declared size.
func badTensor(t *testing.T, name string, size int64, n int, err error) *format.Tensor {
	t.Helper()
	tt, e := format.NewTensor(name, format.U8, []int64{size}, func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(make([]byte, n)), errReader{err})), nil
	})
	if e != nil {
		t.Fatal(e)
	}
	return tt
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) {
	if r.err == nil {
		return 0, io.EOF
	}
	return 0, r.err
}

var errDisk = errors.New("disk on fire")

func TestWriteRejects(t *testing.T) {
	ok, _ := memTensor(t, "ok", format.F32, []int64{2}, 1)
	q, err := format.NewTensor("q", format.Int8Block, []int64{256}, format.BytesOpener(make([]byte, 264)))
	if err != nil {
		t.Fatal(err)
	}
	nf4, err := format.NewTensor("n", format.NF4Block, []int64{64}, format.BytesOpener(make([]byte, 34)))
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := memTensor(t, "__metadata__", format.U8, []int64{1}, 1)
	tests := []struct {
		name    string
		tensors []*format.Tensor
		want    error // nil: any error
	}{
		{"int8 block", []*format.Tensor{ok, q}, ErrQuantized},
		{"nf4 block", []*format.Tensor{nf4}, ErrQuantized},
		{"duplicate names", []*format.Tensor{ok, ok}, ErrDuplicate},
		{"name __metadata__", []*format.Tensor{meta}, nil},
		{"short data", []*format.Tensor{ok, badTensor(t, "short", 10, 9, nil)}, format.ErrShortData},
		{"long data", []*format.Tensor{badTensor(t, "long", 10, 11, nil)}, nil},
		{"read error", []*format.Tensor{badTensor(t, "fails", 10, 5, errDisk)}, errDisk},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(io.Discard, &format.Source{Tensors: tc.tensors}, nil)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestProgress(t *testing.T) {
	a, _ := memTensor(t, "a", format.F32, []int64{1 << 22}, 1) // 16 MiB: several writes
	b, _ := memTensor(t, "b", format.U8, []int64{3}, 2)
	var calls [][2]int64
	var buf bytes.Buffer
	err := Write(&buf, &format.Source{Tensors: []*format.Tensor{a, b}}, &Options{
		Progress: func(w, total int64) { calls = append(calls, [2]int64{w, total}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 4 {
		t.Fatalf("%d progress calls, want header + ≥2 chunks of a + b", len(calls))
	}
	last := int64(0)
	for _, c := range calls {
		if c[0] <= last || c[1] != int64(buf.Len()) {
			t.Fatalf("progress %v: want increasing written and total %d", c, buf.Len())
		}
		last = c[0]
	}
	if last != int64(buf.Len()) {
		t.Errorf("last progress %d, want %d", last, buf.Len())
	}
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	good, _ := memTensor(t, "w", format.F16, []int64{4, 4}, 1)
	q, _ := format.NewTensor("q", format.Int8Block, []int64{128}, format.BytesOpener(make([]byte, 132)))
	failing := badTensor(t, "z", 1<<21, 1<<20, errDisk) // fails after the header and 1 MiB are on disk
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		existing bool
		force    bool
		ctx      context.Context
		tensors  []*format.Tensor
		want     error
		replaced bool // the destination holds the new file afterwards
	}{
		{name: "new", tensors: []*format.Tensor{good}, replaced: true},
		{name: "existing, no force", existing: true, tensors: []*format.Tensor{good}, want: atomicfile.ErrExists},
		{name: "existing, force", existing: true, force: true, tensors: []*format.Tensor{good}, replaced: true},
		{name: "failing source", tensors: []*format.Tensor{good, failing}, want: errDisk},
		{name: "failing source, force", existing: true, force: true, tensors: []*format.Tensor{good, failing}, want: errDisk},
		{name: "quantized", tensors: []*format.Tensor{q}, want: ErrQuantized},
		{name: "cancelled", ctx: cancelled, tensors: []*format.Tensor{good}, want: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.st")
			old := []byte("old contents")
			if tc.existing {
				if err := os.WriteFile(path, old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			err := WriteFile(ctx, path, &format.Source{Tensors: tc.tensors}, tc.force, nil)
			if !errors.Is(err, tc.want) || (tc.want != nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			got, rerr := os.ReadFile(path)
			switch {
			case tc.replaced:
				if src, err := open(got); err != nil || len(src.Tensors) != 1 {
					t.Errorf("written file does not open: %v", err)
				}
			case tc.existing:
				if !bytes.Equal(got, old) {
					t.Errorf("existing file changed to %d bytes", len(got))
				}
			default:
				if !errors.Is(rerr, os.ErrNotExist) {
					t.Errorf("file left behind (%d bytes)", len(got))
				}
			}
			wantEntries := []string(nil)
			if tc.replaced || tc.existing {
				wantEntries = []string{"model.st"}
			}
			if e := dirEntries(t, dir); !slices.Equal(e, wantEntries) {
				t.Errorf("folder holds %q, want %q", e, wantEntries)
			}
		})
	}
}
