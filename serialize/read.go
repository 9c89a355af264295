package serialize

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/cespare/xxhash/v2"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rwkvkit/rwkvkit/format"
)

func init() {
	format.Register("rkv", match, Open, ".rkv")
}

// match reports whether head starts with a msgpack map whose "format" key
// is "rwkvkit". Keys before it are skipped, so the match does not depend
// on the order a writer chose.
func match(head []byte) bool {
	// No count is checked against the bytes left: head is a prefix of
	// the header, and reading past it just fails.
	x := &dec{d: msgpack.NewDecoder(bytes.NewReader(head)), left: func() int { return math.MaxInt32 }}
	found := false
	errStop := errors.New("stop")
	err := x.fields("header", func(key string) error {
		if key != "format" {
			return errUnknown
		}
		v, err := x.str("format", 64)
		found = err == nil && v == Magic
		return errStop
	})
	return err == errStop && found
}

// Open reads the header and index of the artifact in r (size bytes long),
// checks them against each other and against the file size, and returns the
// tensors, which read lazily from r. Each tensor's reader verifies the
// payload's length and xxhash64, and fails naming the tensor on a mismatch.
func Open(r io.ReaderAt, size int64) (*format.Source, error) {
	h, err := ReadHeader(r, size)
	if err != nil {
		return nil, err
	}
	return h.Source(r)
}

// ReadHeaderFile is ReadHeader for the file at path.
func ReadHeaderFile(path string) (*Header, error) {
	return format.ReadPath(path, ReadHeader)
}

// ReadHeader reads and validates the header and index of the artifact in r
// (size bytes long) without reading any payload. Every offset and length is
// checked against the file size, and the header's bytes against the
// index's checksum of them.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	if size < 0 {
		return nil, fmt.Errorf("rkv: negative size %d", size)
	}
	hdrLen, err := scanHeader(r, size)
	if err != nil {
		return nil, err
	}
	idxOff, sums, hdrSum, err := readIndex(r, size, hdrLen)
	if err != nil {
		return nil, err
	}
	hb := make([]byte, hdrLen) // hdrLen ≤ MaxHeaderSize, and present in the file
	if err := readFullAt(r, hb, 0); err != nil {
		return nil, fmt.Errorf("rkv: reading header: %w", err)
	}
	if got := xxhash.Sum64(hb); got != hdrSum {
		return nil, fmt.Errorf("rkv: header: %w (xxhash64 %016x, index says %016x)", ErrChecksum, got, hdrSum)
	}
	h, err := decodeHeader(hb)
	if err != nil {
		return nil, err
	}
	h.HeaderLen, h.IndexOffset = hdrLen, idxOff
	if len(h.Tensors) != len(sums) {
		return nil, fmt.Errorf("rkv: %w: %d tensors in the header, %d checksums in the index", ErrCorrupt, len(h.Tensors), len(sums))
	}
	pos := hdrLen
	for i := range h.Tensors {
		t := &h.Tensors[i]
		t.XXHash64 = sums[i]
		// Offset and Length ≤ idxOff, so encodedLen cannot overflow.
		if t.Offset < pos || t.Offset > idxOff || t.Length > idxOff || encodedLen(t.Length, h.ChunkSize) > idxOff-t.Offset {
			return nil, fmt.Errorf("rkv: tensor %s: %w: payload at %d (+%d bytes) is outside %d..%d or overlaps the previous one",
				format.Quote(t.Name), ErrCorrupt, t.Offset, t.Length, pos, idxOff)
		}
		pos = t.Offset + encodedLen(t.Length, h.ChunkSize)
	}
	return h, nil
}

// scanHeader finds the length of the header object, and refuses a file that
// is not an artifact or is of a newer major version before parsing the rest.
func scanHeader(r io.ReaderAt, size int64) (int64, error) {
	cr := &countReader{r: io.NewSectionReader(r, 0, min(size, MaxHeaderSize))}
	br := bufio.NewReaderSize(cr, 64<<10)
	x := &dec{d: msgpack.NewDecoder(br), left: func() int { return int(min(size, MaxHeaderSize) - cr.n + int64(br.Buffered())) }}
	c, err := br.Peek(1)
	if err != nil || !isMap(c[0]) {
		head := make([]byte, min(size, format.SniffLen))
		r.ReadAt(head, 0)
		return 0, fmt.Errorf("rkv: %w: %s", ErrNotArtifact, format.Describe(head))
	}
	var magic string
	major, minor := int64(-1), int64(0)
	newer := func() error {
		if magic == Magic && major > FormatVersion {
			return &VersionError{Major: major, Minor: minor}
		}
		return nil
	}
	err = x.fields("header", func(key string) error {
		var err error
		switch key {
		case "format":
			magic, err = x.str("format", 64)
			if err == nil && magic != Magic {
				return fmt.Errorf("rkv: %w: format is %q", ErrNotArtifact, magic)
			}
		case "format_version":
			major, err = x.int("format_version")
		case "format_minor":
			minor, err = x.int("format_minor")
		default:
			// The version keys come first; a newer major version may have
			// changed everything after them.
			if err := newer(); err != nil {
				return err
			}
			return errUnknown
		}
		return err
	})
	if err == nil {
		err = newer()
	}
	if err != nil {
		var ve *VersionError
		if errors.As(err, &ve) || errors.Is(err, ErrNotArtifact) {
			return 0, err
		}
		return 0, fmt.Errorf("rkv: %w", err)
	}
	switch {
	case magic != Magic:
		return 0, fmt.Errorf("rkv: %w: the first object has no \"format\": %q", ErrNotArtifact, Magic)
	case major < 1:
		return 0, fmt.Errorf("rkv: %w: no valid format_version", ErrCorrupt)
	}
	return cr.n - int64(br.Buffered()), nil
}

// readIndex reads the end marker and the index object it points to.
func readIndex(r io.ReaderAt, size, hdrLen int64) (off int64, sums []uint64, hdrSum uint64, err error) {
	unfinished := fmt.Errorf("rkv: %w: no index at the end of the file (it was cut short, or its write did not finish)", ErrTruncated)
	if size-hdrLen < endLen+1 {
		return 0, nil, 0, unfinished
	}
	var end [endLen]byte
	if err := readFullAt(r, end[:], size-endLen); err != nil {
		return 0, nil, 0, fmt.Errorf("rkv: reading end marker: %w", err)
	}
	u := binary.BigEndian.Uint64(end[1:])
	if end[0] != 0xcf || u < uint64(hdrLen) || u >= uint64(size-endLen) {
		return 0, nil, 0, unfinished
	}
	idxLen := size - endLen - int64(u)
	if idxLen > MaxHeaderSize {
		return 0, nil, 0, unfinished
	}
	off = int64(u)
	ib := make([]byte, idxLen)
	if err := readFullAt(r, ib, off); err != nil {
		return 0, nil, 0, fmt.Errorf("rkv: reading index: %w", err)
	}
	br := bytes.NewReader(ib)
	x := &dec{d: msgpack.NewDecoder(br), left: br.Len}
	haveHdr := false
	err = x.fields("index", func(key string) error {
		var err error
		switch key {
		case "header_xxhash64":
			hdrSum, err = x.u64("index.header_xxhash64")
			haveHdr = true
		case "tensor_xxhash64":
			var n int
			if n, err = x.arrLen("index.tensor_xxhash64", MaxTensors); err != nil {
				return err
			}
			sums = make([]uint64, n) // n ≤ bytes left in the index
			for i := range sums {
				if sums[i], err = x.u64("index.tensor_xxhash64"); err != nil {
					return err
				}
			}
		default:
			return errUnknown
		}
		return err
	})
	switch {
	case err != nil && len(ib) > 0 && isMap(ib[0]) && errors.Is(err, ErrCorrupt):
		// The end marker points at a map, the index's shape: a field of it
		// is wrong, which no cut-short write explains.
		return 0, nil, 0, fmt.Errorf("rkv: index: %w", err)
	case err != nil:
		return 0, nil, 0, fmt.Errorf("%w (%w)", unfinished, err)
	case br.Len() != 0:
		return 0, nil, 0, fmt.Errorf("%w (%d bytes between the index and the end marker)", unfinished, br.Len())
	case !haveHdr || sums == nil:
		return 0, nil, 0, fmt.Errorf("rkv: %w: the index lacks header_xxhash64 or tensor_xxhash64", ErrCorrupt)
	}
	return off, sums, hdrSum, nil
}

// Source returns the artifact's tensors, reading lazily from r (the file h
// was read from). Each tensor's reader checks its payload as it goes.
func (h *Header) Source(r io.ReaderAt) (*format.Source, error) {
	src := &format.Source{Format: "rkv", Metadata: h.Metadata}
	for i := range h.Tensors {
		ti := h.Tensors[i]
		t, err := format.NewTensor(ti.Name, ti.DType, ti.Shape, func() (io.ReadCloser, error) {
			return openPayload(r, &ti, h.ChunkSize)
		})
		if err != nil {
			return nil, fmt.Errorf("rkv: %w", err)
		}
		src.Tensors = append(src.Tensors, t)
	}
	return src, nil
}

func openPayload(r io.ReaderAt, t *TensorInfo, chunk int64) (io.ReadCloser, error) {
	p := &payloadReader{r: r, t: t, pos: t.Offset, left: t.Length, chunk: chunk, h: xxhash.New()}
	if t.Length == 0 {
		// Nothing will be read, so check the empty payload now.
		if _, err := p.fill(nil); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// payloadReader streams one tensor's payload out of its bin objects. It
// checks each bin header, and verifies the checksum before it returns the
// payload's last bytes: a mismatch withholds them and is returned instead,
// so even io.ReadFull of exactly Length bytes sees it.
type payloadReader struct {
	r       io.ReaderAt
	t       *TensorInfo
	pos     int64 // file offset of the next bin header or payload byte
	inChunk int64 // payload bytes left in the current bin object
	left    int64 // payload bytes left in all
	chunk   int64
	h       *xxhash.Digest
	err     error // sticky
	checked bool
}

func (p *payloadReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.checked {
		return 0, io.EOF
	}
	if int64(len(b)) >= p.left {
		// The last bytes: read them all and verify before handing them over.
		n, err := p.fill(b[:p.left])
		if err != nil {
			p.err = err
			return 0, err
		}
		return n, nil
	}
	if p.inChunk == 0 {
		if err := p.binHeader(); err != nil {
			p.err = err
			return 0, err
		}
	}
	b = b[:min(int64(len(b)), p.inChunk)]
	if err := p.readAt(b); err != nil {
		p.err = err
		return 0, err
	}
	return len(b), nil
}

// fill reads the rest of the payload into b (len(b) == p.left) and checks it.
func (p *payloadReader) fill(b []byte) (int, error) {
	n := 0
	for p.left > 0 {
		if p.inChunk == 0 {
			if err := p.binHeader(); err != nil {
				return 0, err
			}
		}
		k := int(min(int64(len(b)-n), p.inChunk))
		if err := p.readAt(b[n : n+k]); err != nil {
			return 0, err
		}
		n += k
	}
	if p.t.Length == 0 {
		if err := p.binHeader(); err != nil { // the one empty bin object
			return 0, err
		}
	}
	p.checked = true
	if got := p.h.Sum64(); got != p.t.XXHash64 {
		return 0, p.fail(fmt.Errorf("%w: payload xxhash64 %016x, index says %016x", ErrChecksum, got, p.t.XXHash64))
	}
	return n, nil
}

func (p *payloadReader) binHeader() error {
	var bh [binHeaderLen]byte
	if err := readFullAt(p.r, bh[:], p.pos); err != nil {
		return p.readErr(err)
	}
	want := min(p.left, p.chunk)
	if got := binary.BigEndian.Uint32(bh[1:]); bh[0] != 0xc6 || int64(got) != want {
		return p.fail(fmt.Errorf("%w: at offset %d: want a bin 32 of %d bytes, found % x", ErrCorrupt, p.pos, want, bh))
	}
	p.pos += binHeaderLen
	p.inChunk = want
	return nil
}

// hashStep is how much readAt reads before hashing it: small enough that
// the bytes are still in the cache when they are hashed, so verifying costs
// no second pass over memory.
const hashStep = 1 << 20

func (p *payloadReader) readAt(b []byte) error {
	for len(b) > 0 {
		step := b[:min(len(b), hashStep)]
		if err := readFullAt(p.r, step, p.pos); err != nil {
			return p.readErr(err)
		}
		p.h.Write(step)
		p.pos += int64(len(step))
		p.inChunk -= int64(len(step))
		p.left -= int64(len(step))
		b = b[len(step):]
	}
	return nil
}

func (p *payloadReader) readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return p.fail(fmt.Errorf("%w: the file ends inside its payload (at offset %d)", ErrTruncated, p.pos))
	}
	return p.fail(err)
}

// fail returns err as an error of the payload's tensor.
func (p *payloadReader) fail(err error) error {
	return &format.TensorError{Tensor: p.t.Name, Err: fmt.Errorf("rkv: %w", err)}
}

func (p *payloadReader) Close() error { return nil }

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// readFullAt reads len(b) bytes at off. ReaderAt may report io.EOF along
// with a full read of the file's last bytes; that is not an error here.
func readFullAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
