package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// file assembles a safetensors file from a header and a data buffer, with
// the header's length as the prefix.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// withLen is a file whose length prefix is n whatever follows it.
func withLen(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

func open(b []byte) (*format.Source, error) {
	return Open(bytes.NewReader(b), int64(len(b)))
}

var rejections = []struct {
	name    string
	file    []byte
	want    error
	mention string // a phrase the message must contain, if set
}{
	{"empty", nil, ErrTooShort, ""},
	{"7 bytes", []byte("\x01\x00\x00\x00\x00\x00\x00"), ErrTooShort, ""},
	{"header too large", withLen(MaxHeaderSize+1, "{}"), ErrHeaderTooLarge, ""},
	{"LFS pointer", []byte("version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 1000\n"), ErrHeaderTooLarge, "Git LFS pointer"},
	{"HTML page", []byte("<!DOCTYPE html><html><body>Not Found</body></html>"), ErrHeaderTooLarge, "HTML"},
	{"zip checkpoint", []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00archive/data.pkl"), ErrHeaderTooLarge, "zip archive"},
	{"pickle", []byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."), ErrHeaderTooLarge, "pickle"},
	{"header past EOF", withLen(100, `{"a":1}`), ErrHeaderPastEOF, ""},
	{"header one past EOF", withLen(3, `{}`), ErrHeaderPastEOF, ""},
	{"not UTF-8", file("{\"a\xff\":{}}", nil), ErrNotUTF8, "byte 3"},
	{"not JSON", file(`{"a":`, nil), ErrNotJSON, ""},
	{"empty header", file(``, nil), ErrNotJSON, ""},
	{"trailing garbage in header", file(`{}x`, nil), ErrNotJSON, ""},
	{"NUL padding", file("{}\x00\x00", nil), ErrNotJSON, ""},
	{"array", file(`[1,2]`, nil), ErrNotObject, ""},
	{"string", file(`"{}"`, nil), ErrNotObject, ""},
	{"metadata number value", file(`{"__metadata__":{"format":1}}`, nil), ErrMetadata, `"format"`},
	{"metadata string", file(`{"__metadata__":"pt"}`, nil), ErrMetadata, ""},
	{"metadata nested", file(`{"__metadata__":{"a":{"b":"c"}}}`, nil), ErrMetadata, ""},
	{"duplicate tensor", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), ErrDuplicate, `"a"`},
	{"duplicate after unescaping", file(`{"ab":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a\u0062":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), ErrDuplicate, `"ab"`},
	{"duplicate metadata key", file(`{"__metadata__":{"a":"1","a":"2"}}`, nil), ErrDuplicate, ""},
	{"duplicate __metadata__", file(`{"__metadata__":{},"__metadata__":{}}`, nil), ErrDuplicate, ""},
	{"duplicate field", file(`{"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}), ErrDuplicate, ""},
	{"unknown dtype", file(`{"a":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrUnknownDType, "F17"},
	{"rwkvkit-only dtype", file(`{"a":{"dtype":"Q8_128","shape":[1],"data_offsets":[0,5]}}`, make([]byte, 5)), ErrUnknownDType, ""},
	{"lower-case dtype", file(`{"a":{"dtype":"f16","shape":[1],"data_offsets":[0,2]}}`, make([]byte, 2)), ErrUnknownDType, ""},
	{"fp8 dtype", file(`{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), ErrUnsupportedDType, "F8_E4M3"},
	{"count overflow", file(`{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil), ErrOverflow, ""},
	{"count overflow to zero size", file(`{"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, nil), ErrOverflow, ""},
	{"byte size overflow", file(`{"a":{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,0]}}`, nil), ErrOverflow, ""},
	{"dimension beyond 64 bits", file(`{"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]}}`, nil), ErrOverflow, ""},
	{"dimension beyond int64", file(`{"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}}`, nil), ErrOverflow, ""},
	{"size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrSizeMismatch, "8 bytes"},
	{"size mismatch zero", file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrSizeMismatch, ""},
	{"hole at start", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, make([]byte, 4)), ErrOffsets, "hole"},
	{"hole between", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}`, make([]byte, 5)), ErrOffsets, "hole"},
	{"overlap", file(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, make([]byte, 4)), ErrOffsets, "overlap"},
	{"same range twice", file(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrOffsets, "overlap"},
	{"end before begin", file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 4)), ErrOffsets, ""},
	{"offset beyond int64", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775808,9223372036854775809]}}`, nil), ErrOffsets, ""},
	{"offset beyond 64 bits", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551616,18446744073709551617]}}`, nil), ErrOffsets, ""},
	{"trailing bytes", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, make([]byte, 3)), ErrTrailingBytes, ""},
	{"trailing bytes, no tensors", file(`{}`, []byte("PK\x03\x04")), ErrTrailingBytes, ""},
	{"truncated", file(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, make([]byte, 3)), ErrTruncated, ""},
	{"tensor not an object", file(`{"a":[1,2]}`, nil), ErrInvalidTensor, `"a"`},
	{"no dtype", file(`{"a":{"shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), ErrInvalidTensor, "dtype"},
	{"no shape", file(`{"a":{"dtype":"U8","data_offsets":[0,1]}}`, make([]byte, 1)), ErrInvalidTensor, "shape"},
	{"no data_offsets", file(`{"a":{"dtype":"U8","shape":[1]}}`, make([]byte, 1)), ErrInvalidTensor, "data_offsets"},
	{"dtype not a string", file(`{"a":{"dtype":1,"shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), ErrInvalidTensor, ""},
	{"shape not an array", file(`{"a":{"dtype":"U8","shape":1,"data_offsets":[0,1]}}`, make([]byte, 1)), ErrInvalidTensor, ""},
	{"negative dimension", file(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, make([]byte, 1)), ErrInvalidTensor, ""},
	{"fractional dimension", file(`{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}`, make([]byte, 1)), ErrInvalidTensor, ""},
	{"exponent dimension", file(`{"a":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}`, make([]byte, 1)), ErrInvalidTensor, ""},
	{"string dimension", file(`{"a":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}}`, make([]byte, 1)), ErrInvalidTensor, ""},
	{"three offsets", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}`, make([]byte, 1)), ErrInvalidTensor, ""},
	{"rank 9", file(`{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}`, make([]byte, 1)), ErrInvalidTensor, "rank"},
}

func TestOpenRejects(t *testing.T) {
	all := []error{ErrTooShort, ErrHeaderTooLarge, ErrHeaderPastEOF, ErrNotUTF8, ErrNotJSON, ErrNotObject,
		ErrMetadata, ErrDuplicate, ErrInvalidTensor, ErrUnknownDType, ErrUnsupportedDType, ErrOverflow,
		ErrSizeMismatch, ErrOffsets, ErrTrailingBytes, ErrTruncated}
	for _, tc := range rejections {
		t.Run(tc.name, func(t *testing.T) {
			src, err := open(tc.file)
			if err == nil {
				t.Fatalf("accepted, %d tensors", len(src.Tensors))
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, other := range all {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("err = %v also matches %v", err, other)
				}
			}
			if !strings.HasPrefix(err.Error(), "safetensors: ") {
				t.Errorf("err = %q lacks the safetensors: prefix", err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %q does not mention %q", err, tc.mention)
			}
		})
	}
}

type want struct {
	name  string
	dtype format.DType
	shape []int64
	data  []byte
}

func TestOpenAccepts(t *testing.T) {
	f64 := []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f} // 1.0
	tests := []struct {
		name     string
		file     []byte
		tensors  []want
		metadata map[string]string
	}{
		{"no tensors", file(`{}`, nil), nil, nil},
		{"only metadata", file(`{"__metadata__":{"format":"pt","x":"é"}}`, nil), nil, map[string]string{"format": "pt", "x": "é"}},
		{"null metadata", file(`{"__metadata__":null}`, nil), nil, nil},
		{"rank 0", file(`{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}`, f64),
			[]want{{"s", format.F64, []int64{}, f64}}, nil},
		{"zero-sized", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"z":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}`, []byte{7, 8}),
			[]want{{"z", format.F32, []int64{0, 3}, []byte{}}, {"a", format.U8, []int64{2}, []byte{7, 8}}}, nil},
		{"only zero-sized", file(`{"z":{"dtype":"F32","shape":[4,0],"data_offsets":[0,0]}}`, nil),
			[]want{{"z", format.F32, []int64{4, 0}, []byte{}}}, nil},
		{"whitespace before brace", file(" \t\r\n{\"a\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}   ", []byte{0xff}),
			[]want{{"a", format.I8, []int64{1}, []byte{0xff}}}, nil},
		{"unknown fields", file(`{"a":{"extra":{"x":[1,{"y":null}]},"dtype":"BF16","shape":[1],"data_offsets":[0,2],"more":true}}`, []byte{0x80, 0x3f}),
			[]want{{"a", format.BF16, []int64{1}, []byte{0x80, 0x3f}}}, nil},
		{"data order, not header order", file(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"__metadata__":{},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1, 2}),
			[]want{{"a", format.U8, []int64{1}, []byte{1}}, {"b", format.U8, []int64{1}, []byte{2}}}, map[string]string{}},
		{"escaped name", file(`{"a\u0062\n\"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{5}),
			[]want{{"ab\n\"", format.U8, []int64{1}, []byte{5}}}, nil},
		{"every dtype", file(`{"b":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]},"c":{"dtype":"I16","shape":[1],"data_offsets":[1,3]},"d":{"dtype":"U16","shape":[1],"data_offsets":[3,5]},"e":{"dtype":"I32","shape":[1],"data_offsets":[5,9]},"f":{"dtype":"U32","shape":[1],"data_offsets":[9,13]},"g":{"dtype":"U64","shape":[1],"data_offsets":[13,21]}}`, bytes.Repeat([]byte{1}, 21)),
			[]want{{"b", format.Bool, []int64{1}, []byte{1}}, {"c", format.I16, []int64{1}, []byte{1, 1}}, {"d", format.U16, []int64{1}, []byte{1, 1}},
				{"e", format.I32, []int64{1}, []byte{1, 1, 1, 1}}, {"f", format.U32, []int64{1}, []byte{1, 1, 1, 1}}, {"g", format.U64, []int64{1}, bytes.Repeat([]byte{1}, 8)}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := open(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			checkTensors(t, src, tc.tensors)
			if !mapsEqual(src.Metadata, tc.metadata) {
				t.Errorf("metadata %v, want %v", src.Metadata, tc.metadata)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func checkTensors(t *testing.T, src *format.Source, ws []want) {
	t.Helper()
	if len(src.Tensors) != len(ws) {
		t.Fatalf("%d tensors, want %d", len(src.Tensors), len(ws))
	}
	for i, w := range ws {
		got := src.Tensors[i]
		if got.Name != w.name || got.DType != w.dtype || !slices.Equal(got.Shape, w.shape) || (got.Shape == nil) != (w.shape == nil) {
			t.Errorf("tensor %d = %q %v %v, want %q %v %v", i, got.Name, got.DType, got.Shape, w.name, w.dtype, w.shape)
		}
		b, err := got.Bytes()
		if err != nil {
			t.Errorf("tensor %q: %v", got.Name, err)
		} else if !bytes.Equal(b, w.data) {
			t.Errorf("tensor %q bytes % x, want % x", got.Name, b, w.data)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		head []byte
		want bool
	}{
		{file(`{}`, nil), true},
		{file(" \n{}", nil), true},
		{withLen(MaxHeaderSize, "{"), true},
		{withLen(MaxHeaderSize+1, "{"), false},
		{withLen(2, ""), false},
		{file(`[]`, nil), false},
		{[]byte("PK\x03\x04\x14\x00\x00\x00\x08\x00"), false},
		{[]byte("version https://git-lfs.github.com/spec/v1\n"), false},
	}
	for _, tc := range tests {
		if got := match(tc.head); got != tc.want {
			t.Errorf("match(%q) = %v, want %v", tc.head, got, tc.want)
		}
	}
}

func fixtures(t testing.TB) []string {
	paths, err := filepath.Glob("../fixtures/rwkv-tiny/st/*.st")
	if err != nil || len(paths) != 5 {
		t.Fatalf("fixtures: %v, %v (want 5 files)", paths, err)
	}
	return paths
}

// TestFixtures reads web-rwkv's converter output through format.Open (so
// the registration is exercised) and checks every tensor against the
// header decoded independently by encoding/json and against the file's
// bytes at the declared offsets.
func TestFixtures(t *testing.T) {
	for _, path := range fixtures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			n := binary.LittleEndian.Uint64(raw)
			var header map[string]json.RawMessage
			if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
				t.Fatal(err)
			}
			type info struct {
				DType   string   `json:"dtype"`
				Shape   []int64  `json:"shape"`
				Offsets [2]int64 `json:"data_offsets"`
			}
			var ws []want
			var begins []int64
			for name, msg := range header {
				if name == "__metadata__" {
					continue
				}
				var in info
				if err := json.Unmarshal(msg, &in); err != nil {
					t.Fatal(err)
				}
				if in.DType != "F16" {
					t.Fatalf("%s: dtype %s; web-rwkv's converter writes F16 only", name, in.DType)
				}
				start := 8 + int64(n)
				ws = append(ws, want{name, format.F16, in.Shape, raw[start+in.Offsets[0] : start+in.Offsets[1]]})
				begins = append(begins, in.Offsets[0])
			}
			// Expected order: by data offset (each fixture tensor is non-empty,
			// so offsets are distinct).
			idx := make([]int, len(ws))
			for i := range idx {
				idx[i] = i
			}
			slices.SortFunc(idx, func(a, b int) int { return int(begins[a] - begins[b]) })
			sorted := make([]want, len(ws))
			for i, j := range idx {
				sorted[i] = ws[j]
			}

			src, err := format.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if src.Format != "safetensors" {
				t.Errorf("format %q, want safetensors", src.Format)
			}
			if !mapsEqual(src.Metadata, map[string]string{"format": "pt"}) {
				t.Errorf("metadata %v", src.Metadata)
			}
			checkTensors(t, src, sorted)
			if _, err := format.Detect(src); err != nil {
				t.Errorf("Detect: %v", err)
			}
		})
	}
}

// eofAtEnd is a ReaderAt that reports io.EOF along with a full read that
// reaches the end of its data, as io.ReaderAt allows.
type eofAtEnd []byte

func (b eofAtEnd) ReadAt(p []byte, off int64) (int, error) {
	n, err := bytes.NewReader(b).ReadAt(p, off)
	if err == nil && off+int64(n) == int64(len(b)) {
		err = io.EOF
	}
	return n, err
}

func TestReaderAtEdges(t *testing.T) {
	onlyHeader := file(`{}      `, nil)
	withData := file(`{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}`, []byte{1, 2, 3})
	for _, b := range [][]byte{onlyHeader, withData} {
		src, err := Open(eofAtEnd(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		for _, tt := range src.Tensors {
			if got, err := tt.Bytes(); err != nil || !bytes.Equal(got, []byte{1, 2, 3}) {
				t.Errorf("%s: % x, %v", tt.Name, got, err)
			}
		}
	}
	// A size larger than the data: reported as an I/O error, not a panic.
	if _, err := Open(bytes.NewReader(withData[:20]), int64(len(withData))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short reader: err = %v, want io.ErrUnexpectedEOF", err)
	}
	// A reader that ends early inside a tensor's data: reading it fails.
	src, err := Open(bytes.NewReader(withData[:len(withData)-1]), int64(len(withData)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Tensors[0].Bytes(); !errors.Is(err, format.ErrShortData) {
		t.Errorf("truncated tensor: err = %v, want format.ErrShortData", err)
	}
}
