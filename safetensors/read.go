package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/rwkvkit/rwkvkit/format"
)

// match recognises a safetensors file by its first bytes: a plausible
// header length followed by the header's opening brace.
func match(head []byte) bool {
	if len(head) < 9 || binary.LittleEndian.Uint64(head) > MaxHeaderSize {
		return false
	}
	rest := bytes.TrimLeft(head[8:], " \t\r\n")
	return len(rest) > 0 && rest[0] == '{'
}

// entry is one tensor of the header, as declared.
type entry struct {
	name       string
	dtype      format.DType
	shape      []int64
	begin, end int64
}

// Open reads and validates the header of the safetensors file in r (size
// bytes long) and returns its tensors in the order of their data, reading
// lazily from r. Nothing is returned unless the header's tensors cover the
// data buffer exactly, so every tensor's Open yields exactly its Size bytes
// unless r itself fails. The caller closes whatever is behind r.
func Open(r io.ReaderAt, size int64) (*format.Source, error) {
	if size < 8 {
		return nil, fmt.Errorf("safetensors: %w (%d bytes)", ErrTooShort, max(size, 0))
	}
	var lenBuf [8]byte
	if err := readFull(r, lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		head := make([]byte, min(size, format.SniffLen))
		if err := readFull(r, head, 0); err != nil {
			return nil, fmt.Errorf("safetensors: %w: %d bytes declared, at most %d allowed", ErrHeaderTooLarge, n, MaxHeaderSize)
		}
		return nil, fmt.Errorf("safetensors: %w: %d bytes declared, at most %d allowed; the file is probably not safetensors: %s",
			ErrHeaderTooLarge, n, MaxHeaderSize, format.Describe(head))
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("safetensors: %w: %d-byte header in a %d-byte file (truncated?)", ErrHeaderPastEOF, n, size)
	}
	header := make([]byte, n)
	if err := readFull(r, header, 8); err != nil {
		return nil, fmt.Errorf("safetensors: reading header: %w", err)
	}
	metadata, entries, err := parseHeader(header)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	dataStart := 8 + int64(n)
	if err := checkCover(entries, size-dataStart); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	src := &format.Source{Format: "safetensors", Metadata: metadata, Tensors: make([]*format.Tensor, 0, len(entries))}
	for _, e := range entries {
		off, n := dataStart+e.begin, e.end-e.begin
		t, err := format.NewTensor(e.name, e.dtype, e.shape, func() (io.ReadCloser, error) {
			return format.Section(r, off, n), nil
		})
		if err != nil {
			return nil, fmt.Errorf("safetensors: %w", err) // checked by parseTensor already
		}
		src.Tensors = append(src.Tensors, t)
	}
	return src, nil
}

// readFull fills p from r at off. A ReaderAt may report io.EOF along with
// a full read that ends at the end of its data; only a short read is an
// error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// checkCover sorts entries by data offset (stably, so zero-sized tensors
// at one offset keep their header order) and checks that they tile the
// data buffer of bufLen bytes exactly: no hole, no overlap, nothing after.
func checkCover(entries []entry, bufLen int64) error {
	slices.SortStableFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	var next int64
	for _, e := range entries {
		switch {
		case e.begin > next:
			return fmt.Errorf("tensor %s: %w: hole of %d bytes before it (data_offsets [%d, %d])", format.Quote(e.name), ErrOffsets, e.begin-next, e.begin, e.end)
		case e.begin < next:
			return fmt.Errorf("tensor %s: %w: overlaps the tensor before it (data_offsets [%d, %d], previous end %d)", format.Quote(e.name), ErrOffsets, e.begin, e.end, next)
		}
		next = e.end
	}
	switch {
	case next < bufLen:
		return fmt.Errorf("%w: the tensors end at byte %d of the data buffer, the file has %d more", ErrTrailingBytes, next, bufLen-next)
	case next > bufLen:
		return fmt.Errorf("%w: the tensors need %d bytes of data, the file has %d (truncated?)", ErrTruncated, next, bufLen)
	}
	return nil
}
