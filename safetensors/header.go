package safetensors

import (
	"encoding/json"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/rwkvkit/rwkvkit/format"
)

// parseHeader decodes the JSON header. It is checked whole first (valid
// UTF-8, valid JSON), then walked by hand: duplicate keys are seen (a map
// decoder would keep the last silently), memory follows the header's size,
// never a declared count, and the walk costs a few allocations per tensor,
// where encoding/json's token stream costs a few per token (a header of a
// million empty tensors took seconds).
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
	h := &walker{b: header}
	if !h.next('{') {
		return nil, nil, fmt.Errorf("%w (it starts with %s)", ErrNotObject, h.kind())
	}
	var (
		metadata map[string]string
		entries  []entry
		seen     = map[string]bool{}
	)
	for h.more('}') {
		key := h.str()
		h.next(':')
		if seen[key] && key == "__metadata__" {
			return nil, nil, fmt.Errorf("%w %s in the header", ErrDuplicate, format.Quote(key))
		}
		if seen[key] {
			return nil, nil, fmt.Errorf("%w in the header: two tensors named %s", ErrDuplicate, format.Quote(key))
		}
		seen[key] = true
		if key == "__metadata__" {
			var err error
			if metadata, err = h.metadata(); err != nil {
				return nil, nil, err
			}
			continue
		}
		e, err := h.tensor(key)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %s: %w", format.Quote(key), err)
		}
		entries = append(entries, e)
	}
	return metadata, entries, nil
}

// A walker reads JSON that json.Valid has accepted, so it meets no syntax
// errors, only values of the wrong kind; every read checks its bounds
// anyway.
type walker struct {
	b []byte
	i int
}

func (h *walker) ws() {
	for h.i < len(h.b) {
		switch h.b[h.i] {
		case ' ', '\t', '\n', '\r':
			h.i++
		default:
			return
		}
	}
}

// next consumes c if it comes next.
func (h *walker) next(c byte) bool {
	h.ws()
	if h.i < len(h.b) && h.b[h.i] == c {
		h.i++
		return true
	}
	return false
}

// more reports whether an object or array goes on, consuming the comma
// before its next element or the bracket that closes it.
func (h *walker) more(end byte) bool {
	if h.next(end) {
		return false
	}
	h.next(',')
	return true
}

// kind names the kind of the value that comes next.
func (h *walker) kind() string {
	h.ws()
	if h.i == len(h.b) {
		return "nothing"
	}
	switch c := h.b[h.i]; {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	}
	return "a number"
}

// str reads a string; the caller has seen that one comes next.
func (h *walker) str() string {
	h.ws()
	start := h.i
	h.i++ // the opening quote
	escaped := false
	for h.i < len(h.b) && h.b[h.i] != '"' {
		if h.b[h.i] == '\\' {
			escaped = true
			h.i++
		}
		h.i++
	}
	h.i++ // the closing quote
	raw := h.b[start+1 : min(h.i-1, len(h.b))]
	if !escaped {
		return string(raw)
	}
	var s string
	json.Unmarshal(h.b[start:min(h.i, len(h.b))], &s) // valid JSON: cannot fail
	return s
}

// scalar reads a number, true, false or null and returns its text.
func (h *walker) scalar() []byte {
	h.ws()
	start := h.i
	for h.i < len(h.b) {
		switch h.b[h.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return h.b[start:h.i]
		}
		h.i++
	}
	return h.b[start:]
}

// skip consumes one value of any kind, however deep, without recursion.
func (h *walker) skip() {
	depth := 0
	for {
		h.ws()
		if h.i == len(h.b) {
			return
		}
		switch h.b[h.i] {
		case '{', '[':
			depth++
			h.i++
		case '}', ']':
			depth--
			h.i++
		case '"':
			h.str()
		case ',', ':':
			h.i++
		default:
			h.scalar()
		}
		if depth == 0 {
			return
		}
	}
}

// metadata reads __metadata__'s value: an object of strings, or null.
func (h *walker) metadata() (map[string]string, error) {
	if h.kind() == "null" {
		h.scalar()
		return nil, nil
	}
	if !h.next('{') {
		return nil, fmt.Errorf("%w (it is %s)", ErrMetadata, h.kind())
	}
	m := map[string]string{}
	for h.more('}') {
		key := h.str()
		h.next(':')
		if k := h.kind(); k != "a string" {
			return nil, fmt.Errorf("%w (the value of %s is %s)", ErrMetadata, format.Quote(key), k)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("%w %s in __metadata__", ErrDuplicate, format.Quote(key))
		}
		m[key] = h.str()
	}
	return m, nil
}

// tensor reads one tensor entry: an object with dtype, shape and
// data_offsets; other fields are skipped, as the reference reader does.
func (h *walker) tensor(name string) (entry, error) {
	e := entry{name: name}
	if !h.next('{') {
		return e, fmt.Errorf("%w: %s instead of an object", ErrInvalidTensor, h.kind())
	}
	var haveDType, haveShape, haveOffsets bool
	var offsets []uint64
	for h.more('}') {
		key := h.str()
		h.next(':')
		switch {
		case key == "dtype" && haveDType, key == "shape" && haveShape, key == "data_offsets" && haveOffsets:
			return e, fmt.Errorf("%w %s", ErrDuplicate, format.Quote(key))
		}
		switch key {
		case "dtype":
			haveDType = true
			if k := h.kind(); k != "a string" {
				return e, fmt.Errorf("%w: dtype is %s, not a string", ErrInvalidTensor, k)
			}
			s := h.str()
			dt, known := dtypes[s]
			switch {
			case unsupported[s]:
				return e, fmt.Errorf("%w: %s", ErrUnsupportedDType, s)
			case !known:
				return e, fmt.Errorf("%w %s", ErrUnknownDType, format.Quote(s))
			}
			e.dtype = dt
		case "shape":
			haveShape = true
			dims, err := h.uints("shape")
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
			var err error
			if offsets, err = h.uints("data_offsets"); err != nil {
				return e, err
			}
		default:
			h.skip()
		}
	}
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

// uints reads an array of non-negative integers. Its length is bounded by
// the header's size, which the caller has read whole.
func (h *walker) uints(field string) ([]uint64, error) {
	if !h.next('[') {
		return nil, fmt.Errorf("%w: %s is %s, not an array", ErrInvalidTensor, field, h.kind())
	}
	var out []uint64
	for h.more(']') {
		if k := h.kind(); k != "a number" {
			return nil, fmt.Errorf("%w: %s holds %s", ErrInvalidTensor, field, k)
		}
		num := h.scalar()
		u, ok, overflow := parseUint(num)
		switch {
		case overflow && field == "data_offsets":
			return nil, fmt.Errorf("%w: %s holds %s, beyond 64 bits", ErrOffsets, field, clip(num))
		case overflow:
			return nil, fmt.Errorf("%w: %s holds %s, beyond 64 bits", ErrOverflow, field, clip(num))
		case !ok:
			return nil, fmt.Errorf("%w: %s holds %s, not a non-negative integer", ErrInvalidTensor, field, clip(num))
		}
		out = append(out, u)
	}
	return out, nil
}

// parseUint reads the decimal digits of b: ok if b is nothing else,
// overflow if they do not fit in 64 bits.
func parseUint(b []byte) (u uint64, ok, overflow bool) {
	if len(b) == 0 {
		return 0, false, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		d := uint64(c - '0')
		if u > (math.MaxUint64-d)/10 {
			overflow = true
		}
		u = u*10 + d
	}
	return u, !overflow, overflow
}

// clip is b for an error, at most 40 bytes of it.
func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
