package serialize

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/rwkvkit/rwkvkit/format"
)

// virtualFile records a written artifact without storing its payload:
// small writes (header, bin headers, index) are kept, and large ones are
// checked against the source's pattern and served from it again on read.
type virtualFile struct {
	pat  []byte
	segs []segment
	size int64
	pidx int64 // payload bytes seen so far
}

type segment struct {
	off, n int64
	data   []byte // nil: payload bytes from pattern position pidx
	pidx   int64
}

func (v *virtualFile) Write(p []byte) (int, error) {
	if len(p) < 64<<10 {
		v.segs = append(v.segs, segment{off: v.size, n: int64(len(p)), data: bytes.Clone(p)})
	} else {
		want := make([]byte, len(p))
		v.pattern(want, v.pidx)
		if !bytes.Equal(p, want) {
			return 0, fmt.Errorf("payload bytes from %d differ from the source", v.pidx)
		}
		v.segs = append(v.segs, segment{off: v.size, n: int64(len(p)), pidx: v.pidx})
		v.pidx += int64(len(p))
	}
	v.size += int64(len(p))
	return len(p), nil
}

// pattern fills b with the payload bytes from payload position pos on.
func (v *virtualFile) pattern(b []byte, pos int64) {
	p := int(pos % int64(len(v.pat)))
	for n := 0; n < len(b); p = 0 {
		n += copy(b[n:], v.pat[p:])
	}
}

func (v *virtualFile) ReadAt(b []byte, off int64) (int, error) {
	i := sort.Search(len(v.segs), func(i int) bool { return v.segs[i].off+v.segs[i].n > off })
	n := 0
	for ; n < len(b) && i < len(v.segs); i++ {
		s := v.segs[i]
		skip := off + int64(n) - s.off
		k := int(min(int64(len(b)-n), s.n-skip))
		if s.data != nil {
			copy(b[n:n+k], s.data[skip:])
		} else {
			v.pattern(b[n:n+k], s.pidx+skip)
		}
		n += k
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// TestOver4GiB stores a tensor larger than a bin 32 can hold: it must be
// split into a full 4 GiB − 1 chunk and the rest, and read back whole.
func TestOver4GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 8 GiB through the hash")
	}
	const n = 1<<32 + 1000
	pat := make([]byte, 1<<20+7)
	for i := range pat {
		pat[i] = byte(i * 7)
	}
	big, err := format.NewTensor("big", format.U8, []int64{n}, func() (io.ReadCloser, error) {
		return io.NopCloser(&patternReader{pat: pat, left: n}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := xxhash.New()
	io.Copy(want, &patternReader{pat: pat, left: n})

	v := &virtualFile{pat: pat}
	if err := Write(v, &format.Source{Tensors: []*format.Tensor{big}}, &Options{ChunkSize: MaxChunkSize}); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeader(v, v.size)
	if err != nil {
		t.Fatal(err)
	}
	ti := h.Tensors[0]
	if ti.Length != n || ti.Chunks(h.ChunkSize) != 2 || ti.XXHash64 != want.Sum64() {
		t.Fatalf("entry %+v, want %d bytes in 2 chunks, xxhash64 %x", ti, n, want.Sum64())
	}
	// The second chunk's bin header sits right after 4 GiB − 1 bytes.
	var bh [5]byte
	v.ReadAt(bh[:], ti.Offset+binHeaderLen+MaxChunkSize)
	if !bytes.Equal(bh[:], []byte{0xc6, 0, 0, 0x03, 0xe9}) {
		t.Errorf("second chunk header % x, want c6 00 00 03 e9 (1001 bytes)", bh)
	}
	src, err := h.Source(v)
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Tensors[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.CopyBuffer(io.Discard, r, make([]byte, 4<<20))
	if err != nil || got != n {
		t.Fatalf("read %d bytes, %v; want %d", got, err, int64(n))
	}
}
