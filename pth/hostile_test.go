package pth

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/rwkvkit/rwkvkit/internal/hostile"
)

// maxErr bounds the text of any error, whatever the file holds: a few
// hundred bytes per value it names, a few KB in all.
const maxErr = 2048

// mustStayBounded opens data as a user would, expecting an error that contains
// want, no longer than maxErr, within checkAlloc's bound.
func mustStayBounded(t *testing.T, name string, data []byte, want string) {
	t.Helper()
	mustFail(t, name, data, want, nil)
	if _, err := openAll(data); err != nil && len(err.Error()) > maxErr {
		t.Errorf("%s: %d-byte error from a %d-byte file: %.200s…", name, len(err.Error()), len(data), err)
	}
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
		{"REDUCE on a list", hostile.BigString(1<<20).Op(']').Refs(n).Op('e', ')', 'R', '.').Bytes(), "a list cannot be called"},
		{"REDUCE on a tuple", hostile.BigString(1<<20).Refs(n).Op('t', ')', 'R', '.').Bytes(), "a tuple cannot be called"},
		{"REDUCE of a list of arguments", hostile.BigString(1<<20).Global("torch", "Size").Op(']').Refs(n).Op('e', 'R', '.').Bytes(), "the arguments are a list, not a tuple"},
		{"BUILD on a list", hostile.BigString(1<<20).Op(']').Refs(n).Op('e', '}', 'b', '.').Bytes(), "the state of a list cannot be set"},
		{"BUILD on a dict", hostile.BigString(1<<20).Op('}', 'h', 0, 'b', '.').Bytes(), "the state of a dict cannot be set"},
		{"APPEND to a tuple", hostile.BigString(1<<20).Refs(n).Op('t', 'h', 0, 'a', '.').Bytes(), "a tuple is not a list"},
		{"SETITEM on a list", hostile.BigString(1<<20).Op(']').Refs(n).Op('e', 'h', 0, 'h', 0, 's', '.').Bytes(), "a list is not a dict"},
		{"rebuild on strings", hostile.BigString(1<<20).Global("torch._utils", "_rebuild_tensor_v2").Refs(6).Op('t', 'R', '.').Bytes(), `storage argument is "AAAA`},
		{"string storage id", hostile.BigString(1<<20).Op('h', 0, 'Q', '.').Bytes(), `persistent id is "AAAA`},
		{"string as a storage key", hostile.BigString(1<<20).Op('(').Str("storage").Global("torch", "FloatStorage").Op('h', 0).Str("cpu").Int(1).Op('t', 'Q', '.').Bytes(), `storage "AAAA`},
		{"tensor named 1 MiB", hostile.BigString(1<<20).Op('}', '(', 'h', 0).Global("torch._utils", "_rebuild_tensor_v2").Op('(').
			Op('(').Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(2).Op('t', 'Q').
			Int(0).Ints(3).Ints(1).Op(0x89).Global("collections", "OrderedDict").Op(')', 'R', 't', 'R', 'u', '.').Bytes(), `tensor "AAAA`},
		{"nested containers under many keys", func() []byte {
			p := newPickle().Op('}', '(')
			for i := range 2000 {
				p.Str(fmt.Sprint("k", i)).Op(']')
			}
			return p.Op('u', '.').Bytes()
		}(), `nested containers under "k0", "k1", "k2" and 1997 more are not read`},
	} {
		mustStayBounded(t, tc.name, checkpoint(t, tc.pkl, map[string][]byte{"0": f32(2)}), tc.want)
	}
}

// Many names on one storage are refused by the aliasing rule, naming the
// tensors, whether they are separate views or one memoized tensor; tied
// weights (two names, one storage) are not.
func TestAliasing(t *testing.T) {
	const numel = 1 << 18 // 1 MiB of float32
	store := map[string][]byte{"0": f32(numel)}
	for _, memo := range []bool{false, true} {
		mustStayBounded(t, fmt.Sprint("2000 views memoized=", memo), checkpoint(t, hostile.Aliased(2000, numel, memo), store),
			`tensors "w0", "w1", "w2" and 1997 more share storage "0" (1048576 bytes)`)
		src, err := openAll(checkpoint(t, hostile.Aliased(2, numel, memo), store))
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
	p := newPickle().Op('}', '(')
	for i := range 2000 {
		p.Str(fmt.Sprint("w", i)).Global("torch._utils", "_rebuild_tensor_v2").Op('(')
		p.Op('(').Str("storage").Global("torch", "FloatStorage").Str(fmt.Sprint(i)).Str("cpu").Int(numel).Op('t', 'Q')
		p.Int(0).Ints(numel).Ints(1).Op(0x89).Global("collections", "OrderedDict").Op(')', 'R', 't', 'R')
	}
	mustStayBounded(t, "2000 records on one stretch", hostile.OverlappingRecords(p.Op('u', '.').Bytes(), f32(numel), 2000),
		`share storage "0" (1048576 bytes) and read it for 2097152000 bytes`)
}

func TestSmallFindings(t *testing.T) {
	mustStayBounded(t, "empty persistent id", checkpoint(t, newPickle().Op(')', 'Q', '.').Bytes(), nil), "persistent id is an empty tuple, not a storage id")

	// Bytes after the pickle's STOP are covered by the record's CRC-32 like
	// the rest: torch ignores them once the record checks out, and so does
	// this reader, but damaged ones are caught.
	good := stateDict(tensorSpec{Name: "w", Key: "0", StorageType: "FloatStorage", Numel: 4, Shape: []int64{4}, Stride: []int64{1}})
	withTail := append(bytes.Clone(good), "trailing bytes"...)
	data := checkpoint(t, withTail, map[string][]byte{"0": f32(4)})
	if _, err := openAll(data); err != nil {
		t.Fatalf("bytes after STOP with a good CRC-32: %v", err)
	}
	i := bytes.Index(data, []byte("trailing bytes"))
	data[i] = 'T'
	mustStayBounded(t, "bytes after STOP", data, "CRC-32 mismatch")
	if crc32.ChecksumIEEE(withTail) == crc32.ChecksumIEEE(data[i-len(good):i+14]) {
		t.Fatal("the test did not change the record")
	}
}
