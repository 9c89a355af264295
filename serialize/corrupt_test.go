package serialize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rwkvkit/rwkvkit/format"
)

// smallFile is an artifact small enough to corrupt at every bit.
func smallFile(t testing.TB) ([]byte, *Header) {
	t.Helper()
	specs := []spec{
		{"a", format.F16, []int64{3}, 6},
		{"q8", format.Int8Block, []int64{130}, 130 + 8},
		{"nf4", format.NF4Block, []int64{66}, 33 + 4},
		{"empty", format.F32, []int64{0}, 0},
	}
	src, _ := memSource(t, specs, 4)
	data := writeMem(t, src, &Options{ChunkSize: 64, Provenance: Provenance{Tool: "rwkvkit"}})
	h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return data, h
}

// TestBitFlips flips every bit of a file, one at a time. A flip inside a
// tensor's payload must make reading that tensor fail with a checksum error
// naming it (and leave the header readable); a flip anywhere else must make
// Open or some tensor's read fail. Nothing may load silently.
func TestBitFlips(t *testing.T) {
	data, h := smallFile(t)
	owner := make([]string, len(data)) // the tensor whose payload holds each byte
	for _, ti := range h.Tensors {
		pos := ti.Offset
		for left := ti.Length; left > 0; {
			n := min(left, h.ChunkSize)
			for i := pos + binHeaderLen; i < pos+binHeaderLen+n; i++ {
				owner[i] = ti.Name
			}
			pos += binHeaderLen + n
			left -= n
		}
	}
	payloadBits := 0
	for bit := range 8 * len(data) {
		bad := bytes.Clone(data)
		bad[bit/8] ^= 1 << (bit % 8)
		name := owner[bit/8]
		if name == "" {
			if _, err := readAll(bad); err == nil {
				t.Errorf("flip of bit %d (byte %d, outside payloads) went unnoticed", bit, bit/8)
			}
			continue
		}
		payloadBits++
		src, err := Open(bytes.NewReader(bad), int64(len(bad)))
		if err != nil {
			t.Fatalf("payload flip at byte %d broke Open: %v", bit/8, err)
		}
		_, err = src.Lookup(name).Bytes()
		if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
			t.Errorf("payload flip at byte %d of %q: %v, want a checksum error naming it", bit/8, name, err)
		}
		for _, other := range src.Tensors {
			if other.Name != name {
				if _, err := other.Bytes(); err != nil {
					t.Errorf("flip in %q broke %q: %v", name, other.Name, err)
				}
			}
		}
	}
	if payloadBits != 8*(6+138+37) {
		t.Errorf("%d payload bits, want %d", payloadBits, 8*(6+138+37))
	}
}

// TestTruncation cuts the file at every length: Open (or, failing that, a
// tensor's read) must report truncation, never a short tensor.
func TestTruncation(t *testing.T) {
	data, _ := smallFile(t)
	for n := range len(data) {
		_, err := readAll(data[:n])
		if err == nil {
			t.Fatalf("file cut to %d of %d bytes read without error", n, len(data))
		}
		if !errors.Is(err, ErrTruncated) && !(n == 0 && errors.Is(err, ErrNotArtifact)) {
			t.Errorf("cut to %d bytes: %v, want ErrTruncated", n, err)
		}
	}
}

// shrinking serves the first n bytes of a file that Open saw whole, as a
// file truncated after it was opened.
type shrinking struct {
	data []byte
	n    int
}

func (s *shrinking) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(s.data[:s.n]).ReadAt(p, off)
}

func TestTruncatedAfterOpen(t *testing.T) {
	data, h := smallFile(t)
	for n := int(h.HeaderLen); n < int(h.IndexOffset); n++ {
		f := &shrinking{data: data, n: len(data)}
		src, err := Open(f, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		f.n = n
		var failed error
		for _, tn := range src.Tensors {
			if _, err := tn.Bytes(); err != nil {
				failed = err
				if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tn.Name)) {
					t.Errorf("cut to %d: %v, want ErrTruncated naming %q", n, err, tn.Name)
				}
				break
			}
		}
		if failed == nil {
			t.Errorf("cut to %d bytes after Open: every tensor read", n)
		}
	}
}

// kv and omap build msgpack maps with a chosen key order, to hand-build
// files as another writer following docs/ARTIFACT.md would.
type kv struct {
	k string
	v any
}
type omap []kv

func (m omap) EncodeMsgpack(e *msgpack.Encoder) error {
	if err := e.EncodeMapLen(len(m)); err != nil {
		return err
	}
	for _, p := range m {
		if err := e.EncodeString(p.k); err != nil {
			return err
		}
		if err := e.Encode(p.v); err != nil {
			return err
		}
	}
	return nil
}

func pack(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	e := msgpack.NewEncoder(&b)
	e.UseCompactInts(true)
	if err := e.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// handFile assembles a file from a header made by header(offsets), the
// payloads (one compact bin object each) and an index, following the
// schema document rather than the package's writer. extraIndex adds
// fields to the index.
func handFile(t testing.TB, payloads [][]byte, header func(offsets []int64) any, extraIndex ...kv) []byte {
	t.Helper()
	offsets := make([]int64, len(payloads))
	var hdr []byte
	for range 10 { // compact ints: iterate until the offsets stop moving
		hdr = pack(t, header(offsets))
		pos, moved := int64(len(hdr)), false
		for i, p := range payloads {
			moved = moved || offsets[i] != pos
			offsets[i] = pos
			pos += binHeaderLen + int64(len(p)) // as bin 32, below
		}
		if !moved {
			break
		}
	}
	file := bytes.Clone(hdr)
	var sums []uint64
	for _, p := range payloads {
		b := pack(t, p)
		file = append(file, b[:len(b)-len(p)]...)
		if len(b)-len(p) != binHeaderLen {
			// The reader wants bin 32; rewrite the short bin header.
			file = file[:len(file)-(len(b)-len(p))]
			file = append(file, 0xc6, 0, 0, 0, 0)
			binary.BigEndian.PutUint32(file[len(file)-4:], uint32(len(p)))
		}
		file = append(file, p...)
		sums = append(sums, xxhash.Sum64(p))
	}
	idxOff := len(file)
	idx := omap{{"header_xxhash64", xxhash.Sum64(hdr)}, {"tensor_xxhash64", sums}}
	file = append(file, pack(t, append(idx, extraIndex...))...)
	file = append(file, 0xcf)
	return binary.BigEndian.AppendUint64(file, uint64(idxOff))
}

func TestUnknownFieldsIgnored(t *testing.T) {
	f16 := []byte{0x00, 0x3c, 0x00, 0xc0} // 1.0, -2.0
	nf4 := make([]byte, 2+2)
	nf4[0], nf4[2], nf4[3] = 0x7f, 0x00, 0x3c
	header := func(off []int64) any {
		// Payloads are given as compact bin 8 by pack; handFile rewrites
		// them as bin 32, which the offsets below assume.
		return omap{
			{"format", "rwkvkit"}, {"format_version", 1}, {"format_minor", 9},
			{"future_top", omap{{"deep", []any{1, "x", omap{{"y", nil}}}}}},
			{"chunk_size", 1 << 30},
			{"model", omap{{"version", "7"}, {"layout", "web-rwkv"}, {"layers", 2}, {"future", 1.5}}},
			{"provenance", omap{{"tool", "other-writer"}, {"sources", []any{omap{{"name", "m.pth"}, {"future", true}}}},
				{"quantization", omap{{"nf4", "all"}, {"future", []int{1}}}}, {"future", "x"}}},
			{"tensors", []any{
				omap{{"name", "w"}, {"future", []byte{1, 2}}, {"dtype", "F16"}, {"shape", []int{2}},
					{"offset", off[0]}, {"length", len(f16)}},
				omap{{"name", "q"}, {"dtype", "NF4_64"}, {"shape", []int{3}}, {"offset", off[1]}, {"length", len(nf4)},
					{"quant", omap{{"block_size", 64}, {"table", NF4Table()}, {"future", "x"}}}},
			}},
			{"metadata", map[string]string{"k": "v"}},
		}
	}
	data := handFile(t, [][]byte{f16, nf4}, header, kv{"future_index", []int{1, 2, 3}})
	src, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := src.Lookup("w").Bytes()
	q, _ := src.Lookup("q").Bytes()
	if !bytes.Equal(b, f16) || !bytes.Equal(q, nf4) || src.Metadata["k"] != "v" {
		t.Errorf("w = % x, q = % x, metadata %v", b, q, src.Metadata)
	}
	h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Minor != 9 || h.Model.Layers != 2 || h.Provenance.Tool != "other-writer" || h.Provenance.Quantization.NF4 != "all" {
		t.Errorf("header = %+v", h)
	}
	if _, err := format.OpenReaderAt(bytes.NewReader(data), "hand.rkv"); err != nil {
		t.Errorf("format.OpenReaderAt: %v", err)
	}
}

func TestNewerMajorRefused(t *testing.T) {
	// A future major version may change anything after the version keys.
	data := handFile(t, nil, func([]int64) any {
		return omap{{"format", "rwkvkit"}, {"format_version", 2}, {"format_minor", 1}, {"tensors", "no longer a list"}}
	})
	_, err := Open(bytes.NewReader(data), int64(len(data)))
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Major != 2 || ve.Minor != 1 || !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("Open: %v, want a *VersionError for 2.1", err)
	}
	if !strings.Contains(err.Error(), "2.1 is newer") {
		t.Errorf("message %q does not say the version is newer", err)
	}
	_, err = format.OpenReaderAt(bytes.NewReader(data), "future.rkv")
	if !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("format.OpenReaderAt: %v", err)
	}
}

// TestBadHeaders feeds headers that are well-formed msgpack but wrong.
func TestBadHeaders(t *testing.T) {
	f16 := []byte{1, 2, 3, 4}
	tensor := func(fields ...kv) func(off []int64) any {
		return func(off []int64) any {
			tn := omap{{"name", "w"}, {"dtype", "F16"}, {"shape", []int{2}}, {"offset", off[0]}, {"length", 4}}
			for _, f := range fields {
				replaced := false
				for i := range tn {
					if tn[i].k == f.k {
						tn[i].v, replaced = f.v, true
					}
				}
				if !replaced {
					tn = append(tn, f)
				}
			}
			return omap{{"format", "rwkvkit"}, {"format_version", 1}, {"chunk_size", 1024}, {"tensors", []any{tn}}}
		}
	}
	tests := []struct {
		name   string
		header func([]int64) any
		want   error
	}{
		{"unknown dtype", tensor(kv{"dtype", "Q3_K"}), ErrCorrupt},
		{"length disagrees with shape", tensor(kv{"shape", []int{3}}), ErrCorrupt},
		{"negative dimension", tensor(kv{"shape", []int{-2}}), ErrCorrupt},
		{"rank too high", tensor(kv{"shape", make([]int, 9)}), ErrCorrupt},
		{"offset inside header", tensor(kv{"offset", 3}), ErrCorrupt},
		{"offset past index", tensor(kv{"offset", 1 << 40}), ErrCorrupt},
		{"missing name", tensor(kv{"name", ""}), ErrCorrupt},
		{"shape not a list", tensor(kv{"shape", "2"}), ErrCorrupt},
		{"not rwkvkit", func([]int64) any { return omap{{"format", "other"}, {"format_version", 1}} }, ErrNotArtifact},
		{"no version", func([]int64) any { return omap{{"format", "rwkvkit"}} }, ErrCorrupt},
		{"no tensors", func([]int64) any { return omap{{"format", "rwkvkit"}, {"format_version", 1}, {"chunk_size", 8}} }, ErrCorrupt},
	}
	for _, tc := range tests {
		payloads := [][]byte{f16}
		if strings.HasPrefix(tc.name, "no") {
			payloads = nil
		}
		data := handFile(t, payloads, tc.header)
		_, err := readAll(data)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Quantization parameters other than the storage kind's are refused.
	nf4 := make([]byte, 2+2)
	for _, q := range []omap{
		{{"block_size", 32}, {"table", NF4Table()}},
		{{"block_size", 64}},
		{{"block_size", 64}, {"table", make([]float32, 16)}},
		{{"block_size", 64}, {"table", NF4Table()}, {"scale_dtype", "F32"}},
	} {
		data := handFile(t, [][]byte{nf4}, func(off []int64) any {
			return omap{{"format", "rwkvkit"}, {"format_version", 1}, {"chunk_size", 1024}, {"tensors", []any{
				omap{{"name", "q"}, {"dtype", "NF4_64"}, {"shape", []int{3}}, {"offset", off[0]}, {"length", 4}, {"quant", q}}}}}
		})
		if _, err := Open(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("quant %v: %v, want ErrCorrupt", q, err)
		}
	}
	// SF4 payloads decode only with SF4's table.
	data := handFile(t, [][]byte{nf4}, func(off []int64) any {
		return omap{{"format", "rwkvkit"}, {"format_version", 1}, {"chunk_size", 1024}, {"tensors", []any{
			omap{{"name", "q"}, {"dtype", "SF4_64"}, {"shape", []int{3}}, {"offset", off[0]}, {"length", 4},
				{"quant", omap{{"block_size", 64}, {"table", NF4Table()}, {"scale_dtype", "F16"}}}}}}}
	})
	if _, err := Open(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrCorrupt) || !strings.Contains(fmt.Sprint(err), "SF4") {
		t.Errorf("SF4 with NF4's table: %v, want ErrCorrupt naming SF4", err)
	}
}

func TestNotArtifact(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("version https://git-lfs.github.com/spec/v1\n"), {0x93, 1, 2, 3}, pack(t, "rwkvkit")} {
		_, err := Open(bytes.NewReader(in), int64(len(in)))
		if !errors.Is(err, ErrNotArtifact) {
			t.Errorf("% x: %v, want ErrNotArtifact", in[:min(len(in), 8)], err)
		}
		if match(in) {
			t.Errorf("match(% x) = true", in[:min(len(in), 8)])
		}
	}
	if data, _ := smallFile(t); !match(data[:min(len(data), format.SniffLen)]) {
		t.Error("match refuses a written artifact")
	}
}

// An index whose end marker is right but one of whose checksums is not an
// unsigned integer (a negative one here, of the same length) is corrupt,
// not cut short.
func TestIndexWrongKind(t *testing.T) {
	data, h := smallFile(t)
	bad := bytes.Clone(data)
	// The first checksum: 0xcf and 8 bytes, after the index's header key and
	// value and the tensor_xxhash64 key and array length.
	i := bytes.Index(bad[h.IndexOffset:], []byte("tensor_xxhash64"))
	if i < 0 {
		t.Fatal("no tensor_xxhash64 in the index")
	}
	at := h.IndexOffset + int64(i) + int64(len("tensor_xxhash64")) + 1 // fixarray
	if bad[at] != 0xcf {
		t.Fatalf("byte %#x where the first checksum should start", bad[at])
	}
	bad[at] = 0xd3 // int 64
	bad[at+1] |= 0x80
	_, err := ReadHeader(bytes.NewReader(bad), int64(len(bad)))
	if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated) || strings.Contains(err.Error(), "did not finish") {
		t.Errorf("negative checksum: %v, want ErrCorrupt alone", err)
	}
}
