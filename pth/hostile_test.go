package pth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
)

// maxErr bounds the text of any error, whatever the file holds: a few
// hundred bytes per value it names, a few KB in all.
const maxErr = 2048

// hostile opens data as a user would, expecting an error that contains
// want, no longer than maxErr, within checkAlloc's bound.
func hostile(t *testing.T, name string, data []byte, want string) {
	t.Helper()
	mustFail(t, name, data, want, nil)
	if _, err := openAll(data); err != nil && len(err.Error()) > maxErr {
		t.Errorf("%s: %d-byte error from a %d-byte file: %.200s…", name, len(err.Error()), len(data), err)
	}
}

// bigString is a pickle that memoizes one string of n bytes as memo 0.
func bigString(n int) *pk {
	return newPickle().str(strings.Repeat("A", n)).op('q', 0)
}

// refs pushes memo 0 n times after a MARK.
func (p *pk) refs(n int) *pk {
	p.op('(')
	for range n {
		p.op('h', 0)
	}
	return p
}

// An unpickler error never shows the values it is about: gopickle formats
// them with %#v, and a list of one memoized 1 MiB string 2000 times turns
// a 1 MiB file into a 2 GB message. Each error here must stay short.
func TestErrorsNeverFormatValues(t *testing.T) {
	const n = 2000
	for _, tc := range []struct {
		name string
		pkl  []byte
		want string
	}{
		{"REDUCE on a list", bigString(1<<20).op(']').refs(n).op('e', ')', 'R', '.').bytes(), "a list cannot be called"},
		{"REDUCE on a tuple", bigString(1<<20).refs(n).op('t', ')', 'R', '.').bytes(), "a tuple cannot be called"},
		{"REDUCE of a list of arguments", bigString(1<<20).global("torch", "Size").op(']').refs(n).op('e', 'R', '.').bytes(), "the arguments are a list, not a tuple"},
		{"BUILD on a list", bigString(1<<20).op(']').refs(n).op('e', '}', 'b', '.').bytes(), "the state of a list cannot be set"},
		{"BUILD on a dict", bigString(1<<20).op('}', 'h', 0, 'b', '.').bytes(), "the state of a dict cannot be set"},
		{"APPEND to a tuple", bigString(1<<20).refs(n).op('t', 'h', 0, 'a', '.').bytes(), "a tuple is not a list"},
		{"SETITEM on a list", bigString(1<<20).op(']').refs(n).op('e', 'h', 0, 'h', 0, 's', '.').bytes(), "a list is not a dict"},
		{"rebuild on strings", bigString(1<<20).global("torch._utils", "_rebuild_tensor_v2").refs(6).op('t', 'R', '.').bytes(), `storage argument is "AAAA`},
		{"string storage id", bigString(1<<20).op('h', 0, 'Q', '.').bytes(), `persistent id is "AAAA`},
		{"string as a storage key", bigString(1<<20).op('(').str("storage").global("torch", "FloatStorage").op('h', 0).str("cpu").int(1).op('t', 'Q', '.').bytes(), `storage "AAAA`},
		{"tensor named 1 MiB", bigString(1<<20).op('}', '(', 'h', 0).global("torch._utils", "_rebuild_tensor_v2").op('(').
			op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(2).op('t', 'Q').
			int(0).ints(3).ints(1).op(0x89).global("collections", "OrderedDict").op(')', 'R', 't', 'R', 'u', '.').bytes(), `tensor "AAAA`},
		{"nested containers under many keys", func() []byte {
			p := newPickle().op('}', '(')
			for i := range 2000 {
				p.str(fmt.Sprint("k", i)).op(']')
			}
			return p.op('u', '.').bytes()
		}(), `nested containers under "k0", "k1", "k2" and 1997 more are not read`},
	} {
		hostile(t, tc.name, checkpoint(t, tc.pkl, map[string][]byte{"0": f32(2)}), tc.want)
	}
}

// aliased is the pickle of n tensors named w0, w1, … that all view the
// whole of storage "0" of numel float32 elements. memoized: the first
// tensor object is memoized and the others refer to it, two bytes each.
func aliased(n int, numel int64, memoized bool) []byte {
	p := newPickle().op('}', '(')
	for i := range n {
		p.str(fmt.Sprint("w", i))
		if memoized && i > 0 {
			p.op('h', 1)
			continue
		}
		p.global("torch._utils", "_rebuild_tensor_v2").op('(')
		p.op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(numel).op('t', 'Q')
		p.int(0).ints(numel).ints(1).op(0x89).global("collections", "OrderedDict").op(')', 'R', 't', 'R')
		if memoized {
			p.op('q', 1)
		}
	}
	return p.op('u', '.').bytes()
}

// Many names on one storage are refused by the aliasing rule, naming the
// tensors, whether they are separate views or one memoized tensor; tied
// weights (two names, one storage) are not.
func TestAliasing(t *testing.T) {
	const numel = 1 << 18 // 1 MiB of float32
	store := map[string][]byte{"0": f32(numel)}
	for _, memo := range []bool{false, true} {
		hostile(t, fmt.Sprint("2000 views memoized=", memo), checkpoint(t, aliased(2000, numel, memo), store),
			`tensors "w0", "w1", "w2" and 1997 more share storage "0" (1048576 bytes)`)
		src, err := openAll(checkpoint(t, aliased(2, numel, memo), store))
		if err != nil || len(src.Tensors) != 2 {
			t.Fatalf("tied weights, memoized=%v: %v", memo, err)
		}
		a, _ := src.Tensors[0].Bytes()
		b, _ := src.Tensors[1].Bytes()
		if !bytes.Equal(a, b) || !bytes.Equal(a, store["0"]) {
			t.Errorf("tied weights, memoized=%v, read differently", memo)
		}
	}
	// 2000 zip records data/0 … data/1999 all placed on the bytes of one:
	// distinct storages, one stretch of the file.
	p := newPickle().op('}', '(')
	for i := range 2000 {
		p.str(fmt.Sprint("w", i)).global("torch._utils", "_rebuild_tensor_v2").op('(')
		p.op('(').str("storage").global("torch", "FloatStorage").str(fmt.Sprint(i)).str("cpu").int(numel).op('t', 'Q')
		p.int(0).ints(numel).ints(1).op(0x89).global("collections", "OrderedDict").op(')', 'R', 't', 'R')
	}
	hostile(t, "2000 records on one stretch", overlappingRecords(t, p.op('u', '.').bytes(), f32(numel), 2000),
		`share storage "0" (1048576 bytes) and read it for 2097152000 bytes`)
}

// overlappingRecords is a zip checkpoint whose central directory lists
// records data/0 … data/n-1, all pointing at the one local record of data.
func overlappingRecords(t *testing.T, pkl, data []byte, n int) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, r := range []record{{"archive/data.pkl", pkl}, {"archive/data/0", data}} {
		f, err := w.CreateHeader(&zip.FileHeader{Name: r.name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(r.data)
	}
	w.Close()
	b := buf.Bytes()
	// Find data/0's central directory entry and repeat it under other names.
	cd := bytes.Index(b, []byte("PK\x01\x02"))
	second := cd + 46 + int(binary.LittleEndian.Uint16(b[cd+28:])) + int(binary.LittleEndian.Uint16(b[cd+30:])) + int(binary.LittleEndian.Uint16(b[cd+32:]))
	entry := b[second:bytes.Index(b, []byte("PK\x05\x06"))]
	out := bytes.Clone(b[:second+len(entry)])
	for i := 1; i < n; i++ {
		name := fmt.Sprint("archive/data/", i)
		e := bytes.Clone(entry[:46])
		binary.LittleEndian.PutUint16(e[28:], uint16(len(name)))
		binary.LittleEndian.PutUint16(e[30:], 0)
		binary.LittleEndian.PutUint16(e[32:], 0)
		out = append(append(out, e...), name...)
	}
	end := bytes.Clone(b[bytes.Index(b, []byte("PK\x05\x06")):])
	binary.LittleEndian.PutUint16(end[8:], uint16(n+1))
	binary.LittleEndian.PutUint16(end[10:], uint16(n+1))
	binary.LittleEndian.PutUint32(end[12:], uint32(len(out)-cd))
	return append(out, end...)
}

func TestSmallFindings(t *testing.T) {
	hostile(t, "empty persistent id", checkpoint(t, newPickle().op(')', 'Q', '.').bytes(), nil), "persistent id is an empty tuple, not a storage id")

	// Bytes after the pickle's STOP are covered by the record's CRC-32 like
	// the rest: torch ignores them once the record checks out, and so does
	// this reader, but damaged ones are caught.
	good := stateDict(tensorSpec{name: "w", key: "0", storageType: "FloatStorage", numel: 4, shape: []int64{4}, stride: []int64{1}})
	withTail := append(bytes.Clone(good), "trailing bytes"...)
	data := checkpoint(t, withTail, map[string][]byte{"0": f32(4)})
	if _, err := openAll(data); err != nil {
		t.Fatalf("bytes after STOP with a good CRC-32: %v", err)
	}
	i := bytes.Index(data, []byte("trailing bytes"))
	data[i] = 'T'
	hostile(t, "bytes after STOP", data, "CRC-32 mismatch")
	if crc32.ChecksumIEEE(withTail) == crc32.ChecksumIEEE(data[i-len(good):i+14]) {
		t.Fatal("the test did not change the record")
	}
}
