package serialize

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// FuzzOpen feeds arbitrary bytes to Open and reads every tensor it
// returns. Nothing may panic; a tensor's read may allocate only what the
// file itself holds (its Size was checked against the file's length);
// reading the header and index, the tensors and everything else may
// allocate at most allocPerByte bytes per input byte plus 1 MiB; and an
// error is at most maxErr bytes long.
func FuzzOpen(f *testing.F) {
	data, _ := smallFile(f)
	f.Add(data)
	src, _ := memSource(f, mixedSpecs, 9)
	f.Add(writeMem(f, src, &Options{ChunkSize: 16, Provenance: testProvenance()}))
	f.Add(writeMem(f, &format.Source{}, nil))
	f.Add(handFile(f, nil, func([]int64) any {
		return omap{{"format", "rwkvkit"}, {"format_version", 2}, {"tensors", []any{}}}
	}))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer checkAlloc(t, len(data))()
		r := bytes.NewReader(data)
		h, err := ReadHeader(r, int64(len(data)))
		if err != nil {
			checkErr(t, err, len(data))
			return
		}
		src, err := h.Source(r)
		if err != nil {
			t.Fatalf("Source after a valid header: %v", err)
		}
		for _, tn := range src.Tensors {
			if tn.Size() > int64(len(data)) {
				t.Fatalf("tensor %q claims %d bytes of a %d-byte file", tn.Name, tn.Size(), len(data))
			}
			rc, err := tn.Open()
			if err != nil {
				continue
			}
			n, err := io.Copy(io.Discard, rc)
			if err == nil && n != tn.Size() {
				t.Fatalf("tensor %q: %d bytes read without error, Size %d", tn.Name, n, tn.Size())
			}
			if err != nil && !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("tensor %q: untyped error %v", tn.Name, err)
			}
			if err != nil {
				checkErr(t, err, len(data))
			}
		}
	})
}

// Bounds of FuzzOpen and FuzzDecodeHeader: a tensor's entry in the header
// decodes to a few hundred bytes for at least 20 bytes of msgpack.
const (
	allocPerByte = 16
	maxErr       = 2048
)

// checkAlloc measures what the rest of the calling function allocates; the
// function it returns fails t if that is over allocPerByte per input byte
// plus 1 MiB.
func checkAlloc(t *testing.T, size int) func() {
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	return func() {
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(allocPerByte*size+1<<20); got > limit {
			t.Errorf("allocated %d bytes for %d input bytes (limit %d)", got, size, limit)
		}
	}
}

func checkErr(t *testing.T, err error, size int) {
	if len(err.Error()) > maxErr {
		t.Errorf("%d-byte error for %d input bytes: %.200q", len(err.Error()), size, err)
	}
}

// FuzzDecodeHeader reaches the header parser directly: through Open,
// almost every mutation of a header stops at its checksum.
func FuzzDecodeHeader(f *testing.F) {
	for _, seed := range [][]byte{writeMem(f, &format.Source{}, nil)} {
		f.Add(seed)
	}
	data, h := smallFile(f)
	f.Add(data[:h.HeaderLen])
	src, _ := memSource(f, mixedSpecs, 9)
	data = writeMem(f, src, &Options{Provenance: testProvenance(), Model: &format.ModelInfo{Version: format.V6, Layers: 2}})
	h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[:h.HeaderLen])
	f.Fuzz(func(t *testing.T, data []byte) {
		defer checkAlloc(t, len(data))()
		match(data)
		h, err := decodeHeader(data)
		if err != nil {
			checkErr(t, err, len(data))
			return
		}
		for _, ti := range h.Tensors {
			if len(ti.Shape) > format.MaxRank || ti.Length < 0 {
				t.Fatalf("tensor %q: shape %v, length %d accepted", ti.Name, ti.Shape, ti.Length)
			}
		}
	})
}
