package pth

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/hostile"
)

// openAll opens data and reads every tensor, as a user of the package would.
func openAll(data []byte) (*format.Source, error) {
	src, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	for _, t := range src.Tensors {
		if _, err := t.Bytes(); err != nil {
			return src, err
		}
	}
	return src, nil
}

// checkAlloc fails the test if f allocates more than 64 bytes per input
// byte plus 1 MiB: the bound the reader must keep on any input.
func checkAlloc(t *testing.T, what string, size int, f func()) {
	t.Helper()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	if got, limit := b.TotalAlloc-a.TotalAlloc, uint64(64*size+1<<20); got > limit {
		t.Errorf("%s: allocated %d bytes for %d input bytes (limit %d)", what, got, size, limit)
	}
}

// mustFail opens data, expecting an error that contains want (and wraps
// target, if not nil), within the allocation bound.
func mustFail(t *testing.T, name string, data []byte, want string, target error) {
	t.Helper()
	var err error
	checkAlloc(t, name, len(data), func() { _, err = openAll(data) })
	switch {
	case err == nil:
		t.Errorf("%s: no error, want %q", name, want)
	case !strings.HasPrefix(err.Error(), "pth: "):
		t.Errorf("%s: error %q does not start with \"pth: \"", name, err)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q, want it to contain %q", name, err, want)
	case target != nil && !errors.Is(err, target):
		t.Errorf("%s: error %q does not wrap %q", name, err, target)
	}
}

// legacyFile lays out a legacy checkpoint around the main pickle: magic,
// protocol and system-info pickles before it, the key list and the
// storages (8-byte count, bytes) after it.
func legacyFile(main []byte, keys []string, storages ...[]byte) []byte {
	return hostile.Legacy(main, keys, storages...)
}

func TestHostileGlobals(t *testing.T) {
	for _, g := range [][2]string{
		{"os", "system"},
		{"builtins", "eval"},
		{"posix", "system"},
		{"nt", "system"},
		{"subprocess", "Popen"},
		{"torch", "load"},
		// Names other unpicklers resolve by themselves; the scanner must
		// still refuse them.
		{"builtins", "list"},
		{"copy_reg", "_reconstructor"},
		{"__builtin__", "object"},
	} {
		pkl := newPickle().Global(g[0], g[1]).Str("echo pwned").Op(0x85, 'R', '.').Bytes()
		want := `unsupported pickle global "` + g[0] + "." + g[1] + `"`
		data := checkpoint(t, pkl, nil)
		mustFail(t, "zip "+g[0]+"."+g[1], data, want, nil)
		_, err := Open(bytes.NewReader(data), int64(len(data)))
		var ge *GlobalError
		if !errors.As(err, &ge) || ge.Module != g[0] || ge.Name != g[1] {
			t.Errorf("%s.%s: error %v is not a GlobalError naming it", g[0], g[1], err)
		}
		mustFail(t, "legacy "+g[0]+"."+g[1], legacyFile(pkl, nil), want, nil)
	}
	// A global hidden inside an otherwise valid state dict.
	pkl := newPickle().Op('}', '(')
	pkl.Entry(tensorSpec{Name: "w", Key: "0", StorageType: "FloatStorage", Numel: 4, Shape: []int64{4}, Stride: []int64{1}})
	pkl.Str("x").Global("os", "system").Str("id").Op(0x85, 'R').Op('u', '.')
	mustFail(t, "nested os.system", checkpoint(t, pkl.Bytes(), map[string][]byte{"0": f32(4)}), `unsupported pickle global "os.system"`, nil)
}

func TestBadTensors(t *testing.T) {
	const big = int64(1) << 60
	spec := func(numel, offset int64, shape, stride []int64) tensorSpec {
		return tensorSpec{Name: "w", Key: "0", StorageType: "FloatStorage", Numel: numel, Offset: offset, Shape: shape, Stride: stride}
	}
	for _, tc := range []struct {
		name string
		t    tensorSpec
		want string
	}{
		{"stride past storage", spec(6, 0, []int64{2, 3}, []int64{3, 2}), "reaches element 7 of storage \"0\", which has 6"},
		{"size past storage", spec(6, 0, []int64{3, 3}, []int64{3, 1}), "reaches element 8"},
		{"offset past storage", spec(6, 5, []int64{2}, []int64{1}), "reaches element 6"},
		{"empty past storage", spec(6, 7, []int64{0}, []int64{1}), "offset 7 is past its storage"},
		{"numel 2^60", spec(6, 0, []int64{1 << 30, 1 << 30}, []int64{1 << 30, 1}), "reaches element"},
		{"expanded 2^60", spec(6, 0, []int64{big}, []int64{0}), "expanded or overlapping views are not supported"},
		{"overlapping", spec(6, 0, []int64{3, 3}, []int64{1, 1}), "expanded or overlapping"},
		{"numel overflows", spec(6, 0, []int64{1 << 40, 1 << 40}, []int64{1 << 40, 1}), "overflows"},
		{"stride overflows", spec(6, 0, []int64{3}, []int64{1 << 62}), "overflow"},
		{"negative stride", spec(6, 5, []int64{2}, []int64{-1}), "negative stride"},
		{"negative offset", spec(6, -1, []int64{2}, []int64{1}), "negative storage offset"},
		{"negative size", spec(6, 0, []int64{-2}, []int64{1}), "negative dimension"},
		{"rank mismatch", spec(6, 0, []int64{2, 3}, []int64{1}), "but stride"},
		{"rank 9", spec(6, 0, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1}, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1}), "rank 9 exceeds 8"},
		{"storage past record", spec(big, 0, []int64{2}, []int64{1}), "declares 4611686018427387904 bytes but its record has 24"},
		{"storage bytes overflow", spec(1<<62, 0, []int64{2}, []int64{1}), "overflow"},
	} {
		data := checkpoint(t, stateDict(tc.t), map[string][]byte{"0": f32(6)})
		mustFail(t, tc.name, data, tc.want, nil)
	}
	ok := spec(6, 0, []int64{6}, []int64{1})
	mustFail(t, "missing record", checkpoint(t, stateDict(ok), nil), `storage "0" has no record in data/`, nil)
	other := ok
	other.Name, other.StorageType = "v", "HalfStorage"
	mustFail(t, "storage redeclared", checkpoint(t, stateDict(ok, other), map[string][]byte{"0": f32(6)}), "is declared as F32 of 24 bytes and as F16", nil)
	unknown := ok
	unknown.StorageType = "ComplexFloatStorage"
	mustFail(t, "unknown storage type", checkpoint(t, stateDict(unknown), map[string][]byte{"0": f32(6)}), `unsupported pickle global "torch.ComplexFloatStorage"`, nil)
}

func TestBadArchives(t *testing.T) {
	good := stateDict(tensorSpec{Name: "w", Key: "0", StorageType: "FloatStorage", Numel: 6, Shape: []int64{2, 3}, Stride: []int64{3, 1}})
	storages := map[string][]byte{"0": f32(6)}
	if src, err := openAll(checkpoint(t, good, storages)); err != nil || len(src.Tensors) != 1 {
		t.Fatalf("the well-formed base case fails: %v", err)
	}
	torchscript, err := os.ReadFile(filepath.Join(edgeDir, "torchscript.pt"))
	if err != nil {
		t.Fatal(err)
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "sys_info", Mode: 0o644, Size: 4, Format: tar.FormatUSTAR})
	tw.Write([]byte("junk"))
	tw.Close()
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	zipNoise := append([]byte("PK\x03\x04"), random...)
	withRecord := func(name string, data []byte) []byte {
		return buildZip(t, false, record{Name: "archive/data.pkl", Data: good}, record{Name: "archive/data/0", Data: f32(6)}, record{Name: name, Data: data})
	}
	deep := newPickle()
	for range 100 {
		deep.Op('(')
	}
	huge := newPickle().Op('X', 0xf0, 0xff, 0xff, 0xff).Op([]byte("short")...)
	for _, tc := range []struct {
		name   string
		data   []byte
		want   string
		target error
	}{
		{"empty file", nil, "the file is empty", ErrNotCheckpoint},
		{"random bytes", random, "not a PyTorch checkpoint", ErrNotCheckpoint},
		{"zip magic then noise", zipNoise, "reading the zip directory", nil},
		{"zip without data.pkl", buildZip(t, false, record{Name: "archive/data/0", Data: f32(6)}), "no data.pkl", ErrNoPickle},
		{"empty zip", buildZip(t, false), "not a PyTorch checkpoint", ErrNotCheckpoint},
		{"TorchScript", torchscript, "TorchScript archive", ErrTorchScript},
		{"TorchScript by code/", withRecord("archive/code/m.py", []byte("def f(): pass")), "TorchScript", ErrTorchScript},
		{"legacy tar", tarBuf.Bytes(), "legacy tar checkpoint", ErrLegacyTar},
		{"compressed", buildZip(t, true, record{Name: "archive/data.pkl", Data: good}, record{Name: "archive/data/0", Data: f32(6)}), "compressed zip record", ErrCompressed},
		{"records outside a folder", buildZip(t, false, record{Name: "data.pkl", Data: good}), "is not in a folder", ErrNotCheckpoint},
		{"duplicate record", withRecord("archive/data.pkl", good), "appears twice", nil},
		{"byteorder middle", withRecord("archive/byteorder", []byte("middle")), `byteorder record says "middle"`, nil},
		{"top level list", checkpoint(t, newPickle().Op(']', '.').Bytes(), nil), "checkpoint holds a list, not a dict of tensors", nil},
		{"only nested dicts", checkpoint(t, newPickle().Op('}').Str("model").Op('}', 's', '.').Bytes(), nil), "nested containers", nil},
		{"dict holding itself", checkpoint(t, newPickle().Op('}', '2', '2', 's', '.').Bytes(), nil), "a dict key is a dict, which cannot be hashed", nil},
		{"dict holding itself as a value", checkpoint(t, newPickle().Op('}', 'q', 0).Str("self").Op('h', 0, 's', '.').Bytes(), nil), "nested containers under \"self\" are not read", nil},
		{"odd SETITEMS", checkpoint(t, newPickle().Op('}', '(').Str("k").Op('u', '.').Bytes(), nil), "malformed pickle", nil},
		{"unhashable key", checkpoint(t, newPickle().Global("collections", "OrderedDict").Op(')', 'R', '(', ']', 'N', 'u', '.').Bytes(), nil), "malformed pickle: SETITEMS at byte 32: a dict key is a list", nil},
		{"string past the end", checkpoint(t, huge.Bytes(), nil), "needing 4294967280 more bytes", ErrTruncated},
		{"deep nesting", checkpoint(t, deep.Bytes(), nil), "nests deeper than 64", nil},
		{"INST opcode", checkpoint(t, newPickle().Op('i').Op([]byte("os\nsystem\n")...).Op('.').Bytes(), nil), "unsupported pickle opcode 0x69", nil},
		{"STACK_GLOBAL", checkpoint(t, newPickle().Str("os").Str("system").Op(0x93, '.').Bytes(), nil), "unsupported pickle opcode 0x93", nil},
		{"FRAME", checkpoint(t, newPickle().Op(0x95, 1, 0, 0, 0, 0, 0, 0, 0, 'N', '.').Bytes(), nil), "unsupported pickle opcode 0x95", nil},
		{"LONG1 of no bytes", checkpoint(t, newPickle().Op(0x8a, 0, '.').Bytes(), nil), "LONG1 of no bytes", nil},
		{"no STOP", checkpoint(t, newPickle().Op('}').Bytes(), nil), "ends without STOP", ErrTruncated},
		{"stop inside mark", checkpoint(t, newPickle().Op('(', 'N', '.').Bytes(), nil), "marks open", nil},
		{"module persistent id", checkpoint(t, newPickle().Op('(').Str("module").Op('N', 'N', 'N', 't', 'Q', '.').Bytes(), nil), "unsupported persistent id", nil},
		{"protocol 9", checkpoint(t, []byte{0x80, 9, 'N', '.'}, nil), "unsupported pickle protocol 9", nil},
	} {
		mustFail(t, tc.name, tc.data, tc.want, tc.target)
	}
}

// TestFormatOpenErrors checks what format.Open makes of the inputs it
// hands to this package: the file name first, then the reason.
func TestFormatOpenErrors(t *testing.T) {
	dir := t.TempDir()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "storages", Mode: 0o644, Size: 0, Format: tar.FormatUSTAR})
	tw.Close()
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"old.tar": {tarBuf.Bytes(), "pth: legacy tar checkpoint"},
		"ts.pt":   {mustRead(t, filepath.Join(edgeDir, "torchscript.pt")), "pth: TorchScript archive"},
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := format.Open(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+": "+tc.want) {
			t.Errorf("%s: error %v, want it to start with %q", name, err, path+": "+tc.want)
		}
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

// TestCorruptRecords damages real checkpoints where their structure is
// intact but a field lies.
func TestCorruptRecords(t *testing.T) {
	orig := mustRead(t, filepath.Join(edgeDir, "dtypes.pth"))

	// A tensor name inside data.pkl changed: the pickle still parses, the
	// CRC-32 in the zip directory no longer matches.
	crc := bytes.Clone(orig)
	i := bytes.Index(crc, []byte("a.f32"))
	crc[i] = 'A'
	mustFail(t, "data.pkl CRC", crc, "CRC-32 mismatch", nil)

	// The directory entry of data/0 claims 2 GiB.
	long := bytes.Clone(orig)
	entry := -1
	for cd := 0; ; cd++ {
		k := bytes.Index(long[cd:], []byte("PK\x01\x02"))
		if k < 0 {
			t.Fatal("no directory entry for data/0")
		}
		cd += k
		nameLen := int(binary.LittleEndian.Uint16(long[cd+28:]))
		if strings.HasSuffix(string(long[cd+46:cd+46+nameLen]), "/data/0") {
			entry = cd
			break
		}
	}
	binary.LittleEndian.PutUint32(long[entry+20:], 0x7ffffff0) // compressed size
	binary.LittleEndian.PutUint32(long[entry+24:], 0x7ffffff0) // uncompressed size
	mustFail(t, "record past the end", long, "runs past the end", ErrTruncated)

	// Legacy: a storage whose count in the data section disagrees with the pickle.
	leg := mustRead(t, filepath.Join(edgeDir, "legacy.pth"))
	br := bufio.NewReader(bytes.NewReader(leg))
	dataStart := 0
	for range 5 { // magic, protocol, system info, object, keys
		pkl, err := scanPickle(br, int64(len(leg)), false)
		if err != nil {
			t.Fatal(err)
		}
		dataStart += len(pkl)
	}
	bad := bytes.Clone(leg)
	binary.LittleEndian.PutUint64(bad[dataStart:], 1<<62)
	mustFail(t, "legacy count", bad, "elements in the file but", nil)
}

// TestTruncated cuts real checkpoints short at every 1/50th of their length
// and at each of their first 100 bytes: every cut must be a clean error that
// says the file is truncated (or, for a cut inside the first bytes, that it
// is not a checkpoint).
func TestTruncated(t *testing.T) {
	for _, name := range []string{"dtypes.pth", "legacy.pth", "views_legacy.pth", "params.pth"} {
		data := mustRead(t, filepath.Join(edgeDir, name))
		if _, err := openAll(data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cuts := map[int]bool{}
		for i := range 50 {
			cuts[i*len(data)/50] = true
		}
		for i := range 100 {
			cuts[i] = true
		}
		for cut := range cuts {
			var err error
			checkAlloc(t, name, cut, func() { _, err = openAll(data[:cut]) })
			if err == nil {
				t.Errorf("%s cut at %d: no error", name, cut)
			} else if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotCheckpoint) {
				t.Errorf("%s cut at %d: %v", name, cut, err)
			}
		}
	}
}

// TestLegacyView reads a legacy storage view (the sixth element of the
// storage id, which torch ≥ 1.0 always writes as None): elements 2..5 of a
// 10-element storage.
func TestLegacyView(t *testing.T) {
	p := newPickle().Op('}', '(').Str("v").Global("torch._utils", "_rebuild_tensor_v2").Op('(')
	p.Op('(').Str("storage").Global("torch", "FloatStorage").Str("root").Str("cpu").Int(10)
	p.Str("view").Int(2).Int(4).Op(0x87, 't', 'Q')
	p.Int(1).Ints(3).Ints(1).Op(0x89).Global("collections", "OrderedDict").Op(')', 'R', 't', 'R', 'u', '.')
	data := legacyFile(p.Bytes(), []string{"root"}, f32(10))
	src, err := openAll(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.Tensors[0].Float32()
	if err != nil {
		t.Fatal(err)
	}
	// The view starts at element 2; the tensor at offset 1 in it.
	if want := []float32{3, 4, 5}; !equalF32(got, want) {
		t.Errorf("view reads %v, want %v", got, want)
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestUnpickleMemory runs pickles made of long runs of one cheap opcode,
// the most memory per byte a pickle can ask of the unpickler. Whether it is
// refused or not, scanning and unpickling one may allocate no more than the
// budget of a file of its size, plus the pickle itself and a little.
func TestUnpickleMemory(t *testing.T) {
	for _, tc := range []struct{ name, prefix, run, suffix string }{
		{"EMPTY_DICT", "", "}", ""},
		{"EMPTY_LIST", "", "]", ""},
		{"EMPTY_TUPLE", "", ")", ""},
		{"MARK TUPLE", "", "(t", ""},
		{"NONE", "", "N", ""},
		{"DUP", "N", "2", ""},
		{"BININT1", "", "K\x01", ""},
		{"BININT", "", "J\x01\x02\x03\x04", ""},
		{"BINPUT", "", "Nq\x01", ""},
		{"LONG_BINPUT", "", "Nr\x01\x02\x03\x04", ""},
		{"sparse LONG_BINPUT", "N", "r\x01\x02\x03\x04", ""},
		{"OrderedDict()", "ccollections\nOrderedDict\nq\x00", "h\x00)R", ""},
		{"GLOBAL", "", "ctorch\nSize\n", ""},
		{"list APPEND", "]", "2Na0", ""},
		{"one long list", "](", "K\x01", "e"},
		{"dict SETITEM", "}", "2NNs0", ""},
		{"dict of aliases", "X\x01\x00\x00\x00kq\x00}(", "h\x00N", "u"},
		{"strings", "", "X\x04\x00\x00\x00abcd", ""},
		{"aliased string in a list", "X\x00\x00\x01\x00" + strings.Repeat("s", 1<<16) + "q\x00](", "h\x00", "e"},
	} {
		pkl := append([]byte{0x80, 2}, tc.prefix...)
		for len(pkl) < 512<<10 {
			pkl = append(pkl, tc.run...)
		}
		pkl = append(append(pkl, tc.suffix...), '.')
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		sc, err := scanPickle(bufio.NewReader(bytes.NewReader(pkl)), int64(len(pkl)), true)
		if err == nil {
			_, err = (&loader{storages: map[string]*storage{}}).unpickle(sc)
		}
		runtime.ReadMemStats(&b)
		got, limit := int64(b.TotalAlloc-a.TotalAlloc), budget(int64(len(pkl))).Left()+int64(len(pkl))+64<<10
		t.Logf("%s: %.1f bytes per byte: %v", tc.name, float64(got)/float64(len(pkl)), err)
		if got > limit {
			t.Errorf("%s: allocated %d bytes for a %d-byte pickle (limit %d)", tc.name, got, len(pkl), limit)
		}
	}
}
