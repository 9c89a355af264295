package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"slices"
	"testing"
)

var sentinels = []error{ErrTooShort, ErrHeaderTooLarge, ErrHeaderPastEOF, ErrNotUTF8, ErrNotJSON, ErrNotObject,
	ErrMetadata, ErrDuplicate, ErrInvalidTensor, ErrUnknownDType, ErrUnsupportedDType, ErrOverflow,
	ErrSizeMismatch, ErrOffsets, ErrTrailingBytes, ErrTruncated}

// FuzzOpen checks, for any input: no panic; every rejection is one of the
// sentinel errors; an accepted file's tensors read back exactly their
// sizes and together cover the data buffer; the memory Open and the reads
// allocate, and what refusing an input allocates, stays within 16 bytes per
// input byte plus 1 MiB; an error is at most 2 KB long; and writing an
// accepted file back gives a file that opens to the same tensors.
//
// The fixture seeds are megabytes long, so minimizing an input can take the
// default minute; run with a short -fuzzminimizetime (a few seconds).
func FuzzOpen(f *testing.F) {
	for _, path := range fixtures(f) {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		// A small file with a real header's shape, easier to mutate.
		src, err := open(raw)
		if err != nil {
			f.Fatal(err)
		}
		src.Tensors = src.Tensors[:3]
		var buf bytes.Buffer
		if err := Write(&buf, src, nil); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	for _, tc := range rejections {
		f.Add(tc.file)
	}
	f.Add(file(`{"__metadata__":null," \u0000":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"z":{"x":[{}],"dtype":"F32","shape":[0,3],"data_offsets":[8,8]}}`, make([]byte, 8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		src, err := open(data)
		if err != nil {
			if len(err.Error()) > 2048 {
				t.Fatalf("%d-byte error for %d input bytes: %.200q", len(err.Error()), len(data), err)
			}
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(16*len(data))+1<<20 {
				t.Fatalf("allocated %d bytes to refuse a %d-byte input", alloc, len(data))
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("unclassified error: %v", err)
		}
		var total int64
		contents := make([][]byte, len(src.Tensors))
		for i, tt := range src.Tensors {
			b, err := tt.Bytes()
			if err != nil {
				t.Fatalf("tensor %q: %v", tt.Name, err)
			}
			if int64(len(b)) != tt.Size() {
				t.Fatalf("tensor %q: %d bytes, size %d", tt.Name, len(b), tt.Size())
			}
			total += tt.Size()
			contents[i] = b
		}
		runtime.ReadMemStats(&after)
		// A tensor's entry costs a few hundred bytes for at least 40 bytes
		// of header, and its data what it holds; an allocation sized by an
		// unchecked field would be far beyond this.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(16*len(data))+1<<20 {
			t.Fatalf("allocated %d bytes for a %d-byte input", alloc, len(data))
		}
		n := binary.LittleEndian.Uint64(data)
		if total != int64(len(data))-8-int64(n) {
			t.Fatalf("tensors hold %d bytes, data buffer is %d", total, int64(len(data))-8-int64(n))
		}

		var buf bytes.Buffer
		if err := Write(&buf, src, &Options{Metadata: src.Metadata}); err != nil {
			t.Fatalf("writing back: %v", err)
		}
		back, err := open(buf.Bytes())
		if err != nil {
			t.Fatalf("reopening: %v", err)
		}
		if len(back.Tensors) != len(src.Tensors) {
			t.Fatalf("%d tensors back, want %d", len(back.Tensors), len(src.Tensors))
		}
		for i, tt := range src.Tensors {
			bt := back.Lookup(tt.Name)
			if bt == nil || bt.DType != tt.DType || !slices.Equal(bt.Shape, tt.Shape) {
				t.Fatalf("tensor %q: came back as %+v", tt.Name, bt)
			}
			b, err := bt.Bytes()
			if err != nil || !bytes.Equal(b, contents[i]) {
				t.Fatalf("tensor %q: bytes differ after writing back (%v)", tt.Name, err)
			}
		}
	})
}
