package pth

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/hostile"
)

// FuzzOpen opens arbitrary bytes and reads every tensor. It must never
// panic, every error must be this package's and at most maxErr bytes long,
// every tensor it returns must be readable in full and no larger than the
// input (numel ≤ storage ≤ file), and opening and reading everything may
// allocate at most openAllocPerByte bytes per input byte plus 4 MiB: the
// unpickler's budget, the tensors (at most aliasFactor times the input),
// the zip directory and the pickle's own bytes.
func FuzzOpen(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(edgeDir, "*.pt*"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil && len(b) <= 8<<10 {
			f.Add(b)
		}
	}
	f.Add(checkpoint(f, stateDict(
		tensorSpec{Name: "w", Key: "0", StorageType: "FloatStorage", Numel: 6, Shape: []int64{2, 3}, Stride: []int64{1, 2}},
		tensorSpec{Name: "b", Key: "0", StorageType: "FloatStorage", Numel: 6, Offset: 2, Shape: []int64{3}, Stride: []int64{1}},
	), map[string][]byte{"0": f32(6)}))
	f.Add(legacyFile(stateDict(), nil))
	f.Add(checkpoint(f, newPickle().Global("os", "system").Str("id").Op(0x85, 'R', '.').Bytes(), nil))
	f.Add(checkpoint(f, hostile.Aliased(64, 16, true), map[string][]byte{"0": f32(16)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		defer func() {
			runtime.ReadMemStats(&after)
			if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(openAllocPerByte*len(data)+4<<20); got > limit {
				t.Errorf("allocated %d bytes for %d input bytes (limit %d)", got, len(data), limit)
			}
		}()
		src, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "pth: ") {
				t.Errorf("error %.200q lacks the package prefix", err)
			}
			if len(err.Error()) > maxErr {
				t.Errorf("%d-byte error for %d input bytes: %.200q", len(err.Error()), len(data), err)
			}
			return
		}
		for _, tn := range src.Tensors {
			if tn.Size() > int64(len(data)) {
				t.Fatalf("tensor %q of %d bytes from %d input bytes", tn.Name, tn.Size(), len(data))
			}
			b, err := tn.Bytes()
			if err != nil {
				t.Fatalf("tensor %q passed the checks of Open but does not read: %v", tn.Name, err)
			}
			if int64(len(b)) != tn.Size() {
				t.Fatalf("tensor %q: %d bytes, want %d", tn.Name, len(b), tn.Size())
			}
		}
	})
}

// openAllocPerByte bounds what FuzzOpen's opening and reading allocate per
// input byte: memPerByte for the unpickler, aliasFactor for the tensors,
// and the zip directory's entries and the pickle's bytes besides.
const openAllocPerByte = memPerByte + aliasFactor + 10

// FuzzPickle feeds arbitrary bytes to the pickle path alone (scanner,
// unpickler, tensor checks, reads) against storages of 1 KiB each: through
// FuzzOpen most mutations of data.pkl stop at the zip's CRC-32. Scanning,
// unpickling and building the source may allocate no more than the budget
// of a file the pickle's size plus the pickle itself, and an error may be
// at most maxErr bytes long.
func FuzzPickle(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(edgeDir, "*.pth"))
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			continue
		}
		fi, _ := fh.Stat()
		if z, err := openZipDir(fh, fi.Size()); err == nil {
			off, n, _ := z.record(z.records["data.pkl"])
			pkl := make([]byte, n)
			fh.ReadAt(pkl, off)
			f.Add(pkl)
		}
		fh.Close()
	}
	f.Add(stateDict(tensorSpec{Name: "w", Key: "0", StorageType: "HalfStorage", Numel: 6, Shape: []int64{2, 3}, Stride: []int64{1, 2}}))
	store := make([]byte, 64<<10)
	for i := range store {
		store[i] = byte(i * 7)
	}
	f.Fuzz(func(t *testing.T, pkl []byte) {
		l := &loader{legacy: len(pkl)%2 == 1, storages: map[string]*storage{}, views: map[string]*storage{},
			resolve: func(key string, nbytes int64) (*storage, error) {
				if nbytes > 1024 {
					return nil, fmt.Errorf("storage of %d bytes", nbytes)
				}
				return &storage{off: int64(len(key)%64) * 1024}, nil
			}}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		src, err := func() (*format.Source, error) {
			p, err := scanPickle(bufio.NewReader(bytes.NewReader(pkl)), int64(len(pkl)), true)
			if err != nil {
				return nil, err
			}
			obj, err := l.unpickle(p)
			if err != nil {
				return nil, err
			}
			return source(obj, bytes.NewReader(store), len(pkl)%3 == 0)
		}()
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(budget(int64(len(pkl))).Left()+2*int64(len(pkl))+64<<10); got > limit {
			t.Errorf("allocated %d bytes for a %d-byte pickle (limit %d)", got, len(pkl), limit)
		}
		if err != nil {
			if len(err.Error()) > maxErr {
				t.Errorf("%d-byte error for %d input bytes: %.200q", len(err.Error()), len(pkl), err)
			}
			return
		}
		for _, tn := range src.Tensors {
			if tn.Size() > 1024 {
				t.Fatalf("tensor %q of %d bytes from a 1 KiB storage", tn.Name, tn.Size())
			}
			if _, err := tn.Bytes(); err != nil {
				t.Fatalf("tensor %q: %v", tn.Name, err)
			}
		}
	})
}
