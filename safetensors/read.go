package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

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
		sr := io.NewSectionReader(r, dataStart+e.begin, e.end-e.begin)
		t, err := format.NewTensor(e.name, e.dtype, e.shape, func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(sr, 0, sr.Size())), nil
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
			return fmt.Errorf("tensor %q: %w: hole of %d bytes before it (data_offsets [%d, %d])", e.name, ErrOffsets, e.begin-next, e.begin, e.end)
		case e.begin < next:
			return fmt.Errorf("tensor %q: %w: overlaps the tensor before it (data_offsets [%d, %d], previous end %d)", e.name, ErrOffsets, e.begin, e.end, next)
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

// parseHeader decodes the JSON header with a token stream, so that
// duplicate keys are seen (a map decoder would keep the last silently) and
// memory follows the header's size, never a declared count.
func parseHeader(header []byte) (map[string]string, []entry, error) {
	if !utf8.Valid(header) {
		i := 0
		for i < len(header) {
			r, w := utf8.DecodeRune(header[i:])
			if r == utf8.RuneError && w == 1 {
				break
			}
			i += w
		}
		return nil, nil, fmt.Errorf("%w (at byte %d)", ErrNotUTF8, i)
	}
	if !json.Valid(header) {
		var v any
		err := json.Unmarshal(header, &v)
		return nil, nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	d := json.NewDecoder(bytes.NewReader(header))
	d.UseNumber()
	if tok, _ := d.Token(); tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("%w (it starts with %s)", ErrNotObject, describeToken(tok))
	}
	var (
		metadata map[string]string
		entries  []entry
		seen     = map[string]bool{}
	)
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
		}
		key := tok.(string) // object keys are strings in valid JSON
		if seen[key] && key == "__metadata__" {
			return nil, nil, fmt.Errorf("%w %q in the header", ErrDuplicate, key)
		}
		if seen[key] {
			return nil, nil, fmt.Errorf("%w in the header: two tensors named %q", ErrDuplicate, key)
		}
		seen[key] = true
		if key == "__metadata__" {
			if metadata, err = parseMetadata(d); err != nil {
				return nil, nil, err
			}
			continue
		}
		e, err := parseTensor(d, key)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", key, err)
		}
		entries = append(entries, e)
	}
	return metadata, entries, nil
}

func describeToken(tok json.Token) string {
	switch tok {
	case json.Delim('{'):
		return "an object"
	case json.Delim('['):
		return "an array"
	}
	switch tok.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// parseMetadata reads __metadata__'s value: an object of strings, or null.
func parseMetadata(d *json.Decoder) (map[string]string, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("%w (it is %s)", ErrMetadata, describeToken(tok))
	}
	m := map[string]string{}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
		}
		key := k.(string)
		v, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w (the value of %q is %s)", ErrMetadata, key, describeToken(v))
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("%w %q in __metadata__", ErrDuplicate, key)
		}
		m[key] = s
	}
	d.Token() // the closing brace
	return m, nil
}

// parseTensor reads one tensor entry: an object with dtype, shape and
// data_offsets; other fields are skipped, as the reference reader does.
func parseTensor(d *json.Decoder, name string) (entry, error) {
	e := entry{name: name}
	tok, err := d.Token()
	if err != nil {
		return e, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if tok != json.Delim('{') {
		return e, fmt.Errorf("%w: %s instead of an object", ErrInvalidTensor, describeToken(tok))
	}
	var haveDType, haveShape, haveOffsets bool
	var offsets []uint64
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return e, fmt.Errorf("%w: %v", ErrNotJSON, err)
		}
		key := k.(string)
		switch key {
		case "dtype", "shape", "data_offsets":
			if (key == "dtype" && haveDType) || (key == "shape" && haveShape) || (key == "data_offsets" && haveOffsets) {
				return e, fmt.Errorf("%w %q", ErrDuplicate, key)
			}
		}
		switch key {
		case "dtype":
			haveDType = true
			v, err := d.Token()
			if err != nil {
				return e, fmt.Errorf("%w: %v", ErrNotJSON, err)
			}
			s, ok := v.(string)
			if !ok {
				return e, fmt.Errorf("%w: dtype is %s, not a string", ErrInvalidTensor, describeToken(v))
			}
			dt, known := dtypes[s]
			switch {
			case unsupported[s]:
				return e, fmt.Errorf("%w: %s", ErrUnsupportedDType, s)
			case !known:
				return e, fmt.Errorf("%w %q", ErrUnknownDType, s)
			}
			e.dtype = dt
		case "shape":
			haveShape = true
			dims, err := parseUints(d, "shape")
			if err != nil {
				return e, err
			}
			if len(dims) > format.MaxRank {
				return e, fmt.Errorf("%w: rank %d exceeds %d", ErrInvalidTensor, len(dims), format.MaxRank)
			}
			e.shape = make([]int64, len(dims))
			for i, v := range dims {
				if v > math.MaxInt64 {
					return e, fmt.Errorf("%w: dimension %d of shape", ErrOverflow, v)
				}
				e.shape[i] = int64(v)
			}
		case "data_offsets":
			haveOffsets = true
			if offsets, err = parseUints(d, "data_offsets"); err != nil {
				return e, err
			}
		default:
			if err := skipValue(d); err != nil {
				return e, err
			}
		}
	}
	d.Token() // the closing brace
	switch {
	case !haveDType:
		return e, fmt.Errorf("%w: no dtype", ErrInvalidTensor)
	case !haveShape:
		return e, fmt.Errorf("%w: no shape", ErrInvalidTensor)
	case !haveOffsets:
		return e, fmt.Errorf("%w: no data_offsets", ErrInvalidTensor)
	case len(offsets) != 2:
		return e, fmt.Errorf("%w: data_offsets has %d numbers, not 2", ErrInvalidTensor, len(offsets))
	case offsets[0] > math.MaxInt64 || offsets[1] > math.MaxInt64:
		return e, fmt.Errorf("%w: data_offsets [%d, %d] out of range", ErrOffsets, offsets[0], offsets[1])
	case offsets[1] < offsets[0]:
		return e, fmt.Errorf("%w: data_offsets [%d, %d] end before they begin", ErrOffsets, offsets[0], offsets[1])
	}
	e.begin, e.end = int64(offsets[0]), int64(offsets[1])
	count := int64(1)
	for _, v := range e.shape {
		if v != 0 && count > math.MaxInt64/v {
			return e, fmt.Errorf("%w: element count of shape %v", ErrOverflow, e.shape)
		}
		count *= v
	}
	nbytes, err := e.dtype.StorageSize(count)
	if err != nil {
		return e, fmt.Errorf("%w: %d elements of %v", ErrOverflow, count, e.dtype)
	}
	if nbytes != e.end-e.begin {
		return e, fmt.Errorf("%w: %v %v is %d bytes, data_offsets [%d, %d] hold %d",
			ErrSizeMismatch, e.dtype, e.shape, nbytes, e.begin, e.end, e.end-e.begin)
	}
	return e, nil
}

// parseUints reads an array of non-negative integers. Its length is bounded
// by the header's size, which the caller has read whole.
func parseUints(d *json.Decoder, field string) ([]uint64, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("%w: %s is %s, not an array", ErrInvalidTensor, field, describeToken(tok))
	}
	var out []uint64
	for d.More() {
		v, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
		}
		num, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%w: %s holds %s", ErrInvalidTensor, field, describeToken(v))
		}
		u, err := strconv.ParseUint(string(num), 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			kind := ErrOverflow
			if field == "data_offsets" {
				kind = ErrOffsets
			}
			return nil, fmt.Errorf("%w: %s holds %s, beyond 64 bits", kind, field, num)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s holds %s, not a non-negative integer", ErrInvalidTensor, field, num)
		}
		out = append(out, u)
	}
	d.Token() // the closing bracket
	return out, nil
}

// skipValue consumes one JSON value of any kind.
func skipValue(d *json.Decoder) error {
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotJSON, err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
