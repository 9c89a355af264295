package serialize

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// dec decodes msgpack values with every length checked before it is used:
// against a caller's limit, and against the bytes left in the object being
// decoded, so nothing is allocated on the word of an unchecked field.
type dec struct {
	d       *msgpack.Decoder
	left    func() int // bytes left to decode
	scratch []byte     // where discard reads what it skips
}

// fail wraps a decoder error: an object that ends early is truncated,
// anything else corrupt.
func (x *dec) fail(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: the object ends early", ErrTruncated, what)
	}
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
}

func (x *dec) peek(what string) (byte, error) {
	c, err := x.d.PeekCode()
	if err != nil {
		return 0, x.fail(what, err)
	}
	return c, nil
}

// null consumes a nil, reporting whether there was one.
func (x *dec) null() bool {
	if c, err := x.d.PeekCode(); err == nil && c == msgpcode.Nil {
		x.d.Skip()
		return true
	}
	return false
}

func isMap(c byte) bool { return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 }
func isArray(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}
func isStr(c byte) bool {
	return msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32
}
func isInt(c byte) bool {
	return msgpcode.IsFixedNum(c) || (c >= msgpcode.Uint8 && c <= msgpcode.Int64)
}

func typeName(c byte) string {
	switch {
	case isMap(c):
		return "a map"
	case isArray(c):
		return "an array"
	case isStr(c):
		return "a string"
	case isInt(c):
		return "an integer"
	case c == msgpcode.Nil:
		return "nil"
	case c == msgpcode.Float || c == msgpcode.Double:
		return "a float"
	case c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32:
		return "bytes"
	}
	return fmt.Sprintf("code %#02x", c)
}

func (x *dec) want(what, kind string, ok func(byte) bool) error {
	c, err := x.peek(what)
	if err != nil {
		return err
	}
	if !ok(c) {
		return fmt.Errorf("%w: %s: want %s, found %s", ErrCorrupt, what, kind, typeName(c))
	}
	return nil
}

// mapLen decodes a map header of at most limit entries.
func (x *dec) mapLen(what string, limit int) (int, error) {
	if err := x.want(what, "a map", isMap); err != nil {
		return 0, err
	}
	n, err := x.d.DecodeMapLen()
	if err != nil {
		return 0, x.fail(what, err)
	}
	if n > limit {
		return 0, fmt.Errorf("%w: %s: %d entries (at most %d)", ErrCorrupt, what, n, limit)
	}
	if n > x.left()/2 {
		return 0, fmt.Errorf("%w: %s: %d entries, %d bytes left", ErrTruncated, what, n, x.left())
	}
	return n, nil
}

// arrLen decodes an array header of at most limit elements.
func (x *dec) arrLen(what string, limit int) (int, error) {
	if err := x.want(what, "an array", isArray); err != nil {
		return 0, err
	}
	n, err := x.d.DecodeArrayLen()
	if err != nil {
		return 0, x.fail(what, err)
	}
	if n > limit {
		return 0, fmt.Errorf("%w: %s: %d elements (at most %d)", ErrCorrupt, what, n, limit)
	}
	if n > x.left() {
		return 0, fmt.Errorf("%w: %s: %d elements, %d bytes left", ErrTruncated, what, n, x.left())
	}
	return n, nil
}

func (x *dec) str(what string, limit int) (string, error) {
	if err := x.want(what, "a string", isStr); err != nil {
		return "", err
	}
	n, err := x.d.DecodeBytesLen()
	if err != nil {
		return "", x.fail(what, err)
	}
	if n > limit {
		return "", fmt.Errorf("%w: %s: string of %d bytes (at most %d)", ErrCorrupt, what, n, limit)
	}
	if n > x.left() {
		return "", fmt.Errorf("%w: %s: string of %d bytes, %d left", ErrTruncated, what, n, x.left())
	}
	b := make([]byte, n)
	if err := x.d.ReadFull(b); err != nil {
		return "", x.fail(what, err)
	}
	return string(b), nil
}

// int decodes an integer of any width that fits in int64.
func (x *dec) int(what string) (int64, error) {
	c, err := x.peek(what)
	if err != nil {
		return 0, err
	}
	if !isInt(c) {
		return 0, fmt.Errorf("%w: %s: want an integer, found %s", ErrCorrupt, what, typeName(c))
	}
	if c == msgpcode.Uint64 {
		u, err := x.d.DecodeUint64()
		if err != nil {
			return 0, x.fail(what, err)
		}
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("%w: %s: %d is out of range", ErrCorrupt, what, u)
		}
		return int64(u), nil
	}
	n, err := x.d.DecodeInt64()
	if err != nil {
		return 0, x.fail(what, err)
	}
	return n, nil
}

// nonNeg decodes an integer in [0, limit].
func (x *dec) nonNeg(what string, limit int64) (int64, error) {
	n, err := x.int(what)
	if err == nil && (n < 0 || n > limit) {
		err = fmt.Errorf("%w: %s: %d is outside 0..%d", ErrCorrupt, what, n, limit)
	}
	return n, err
}

func (x *dec) u64(what string) (uint64, error) {
	c, err := x.peek(what)
	if err != nil {
		return 0, err
	}
	if !isInt(c) || c >= msgpcode.Int8 { // signed codes and negative fixints
		return 0, fmt.Errorf("%w: %s: want an unsigned integer, found %s", ErrCorrupt, what, typeName(c))
	}
	u, err := x.d.DecodeUint64()
	if err != nil {
		return 0, x.fail(what, err)
	}
	return u, nil
}

func (x *dec) float(what string) (float64, error) {
	c, err := x.peek(what)
	if err != nil {
		return 0, err
	}
	if isInt(c) {
		n, err := x.int(what)
		return float64(n), err
	}
	if c != msgpcode.Float && c != msgpcode.Double {
		return 0, fmt.Errorf("%w: %s: want a number, found %s", ErrCorrupt, what, typeName(c))
	}
	f, err := x.d.DecodeFloat64()
	if err != nil {
		return 0, x.fail(what, err)
	}
	return f, nil
}

// skip skips one value of any type, nested at most maxDepth deep (a deeper
// file would otherwise recurse without bound).
func (x *dec) skip(what string) error { return x.skipDepth(what, 0) }

func (x *dec) skipDepth(what string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: %s: nested more than %d deep", ErrCorrupt, what, maxDepth)
	}
	c, err := x.peek(what)
	if err != nil {
		return err
	}
	var n int
	switch {
	case isMap(c):
		m, err := x.d.DecodeMapLen()
		if err != nil {
			return x.fail(what, err)
		}
		n = 2 * m
	case isArray(c):
		if n, err = x.d.DecodeArrayLen(); err != nil {
			return x.fail(what, err)
		}
	case isStr(c) || c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32:
		m, err := x.d.DecodeBytesLen()
		if err != nil {
			return x.fail(what, err)
		}
		return x.discard(what, m)
	case c == msgpcode.Ext8 || c == msgpcode.Ext16 || c == msgpcode.Ext32 || (c >= msgpcode.FixExt1 && c <= msgpcode.FixExt16):
		_, m, err := x.d.DecodeExtHeader()
		if err != nil {
			return x.fail(what, err)
		}
		return x.discard(what, m)
	default:
		if err := x.d.Skip(); err != nil {
			return x.fail(what, err)
		}
		return nil
	}
	// Every element takes at least one byte, so the file's length bounds
	// this loop whatever n claims.
	for range n {
		if err := x.skipDepth(what, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// discard skips the n bytes of a string, bytes or extension value, checked
// against the bytes left first: msgpack's own Skip would allocate up to
// 1 MiB on the word of the length before finding the bytes missing.
func (x *dec) discard(what string, n int) error {
	if n < 0 || n > x.left() {
		return fmt.Errorf("%w: %s: a value of %d bytes, %d left", ErrTruncated, what, n, x.left())
	}
	if x.scratch == nil {
		x.scratch = make([]byte, 4096)
	}
	for n > 0 {
		k := min(n, len(x.scratch))
		if err := x.d.ReadFull(x.scratch[:k]); err != nil {
			return x.fail(what, err)
		}
		n -= k
	}
	return nil
}

// fields decodes a map with string keys, calling field for each key; a key
// that field does not know must be skipped by returning errUnknown. Non-
// string keys are skipped too: a later minor version may add anything.
func (x *dec) fields(what string, field func(key string) error) error {
	n, err := x.mapLen(what, math.MaxInt)
	if err != nil {
		return err
	}
	for range n {
		c, err := x.peek(what)
		if err != nil {
			return err
		}
		if !isStr(c) {
			if err := x.skip(what); err != nil {
				return err
			}
			if err := x.skip(what); err != nil {
				return err
			}
			continue
		}
		key, err := x.str(what+" key", MaxNameLen)
		if err != nil {
			return err
		}
		switch err := field(key); {
		case err == errUnknown:
			if err := x.skip(what + "." + key); err != nil {
				return err
			}
		case err != nil:
			return err
		}
	}
	return nil
}

var errUnknown = errors.New("unknown field")

// strMap decodes a map of strings to strings; an empty one is nil.
func (x *dec) strMap(what string) (map[string]string, error) {
	if x.null() {
		return nil, nil
	}
	n, err := x.mapLen(what, MaxEntries)
	if err != nil || n == 0 {
		return nil, err
	}
	m := make(map[string]string, n)
	for range n {
		k, err := x.str(what+" key", MaxNameLen)
		if err != nil {
			return nil, err
		}
		v, err := x.str(what+"."+k, MaxStringLen)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}
