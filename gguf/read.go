package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Limits of ggml's own reader (gguf.cpp), which the files llama.cpp loads obey.
const (
	maxDims    = 4  // GGML_MAX_DIMS
	maxNameLen = 63 // GGML_MAX_NAME, less its terminating zero
)

// Smallest encodings, used to refuse counts the rest of the file cannot
// hold before anything is allocated for them.
const (
	minKVBytes     = 8 + 4 + 1     // empty key, value type, one byte of value
	minTensorBytes = 8 + 4 + 4 + 8 // empty name, no dimensions, type, offset
)

// ReadFile parses the header of the GGUF file in the size bytes of r: its
// metadata and its tensor descriptors. It checks every length, count, type,
// dimension and offset against the file, as ggml's reader does, so that
// every tensor's data lies inside the file: tensors follow one another in
// the data section, each at the next multiple of the alignment. Memory stays
// within a small multiple of the header's size whatever the header declares.
func ReadFile(r io.ReaderAt, size int64) (*File, error) {
	f, err := readFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return f, nil
}

func readFile(r io.ReaderAt, size int64) (*File, error) {
	p := &parser{r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10), size: size}
	if size < 4 {
		return nil, fmt.Errorf("%w (%d bytes)", ErrNotGGUF, max(size, 0))
	}
	magic := p.bytes(4)
	if p.err != nil {
		return nil, p.err
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("%w: first bytes % x", ErrNotGGUF, magic)
	}
	f := &File{Version: p.u32(), Alignment: DefaultAlignment, kv: map[string]int{}}
	switch {
	case p.err != nil:
		return nil, p.err
	case f.Version == 1:
		return nil, fmt.Errorf("%w 1: the first GGUF version (2023) is read by no current tool; convert the model again", ErrVersion)
	case f.Version&0xFFFF == 0:
		return nil, fmt.Errorf("%w: a big-endian file (version field %#08x); only little-endian GGUF is read", ErrVersion, f.Version)
	case f.Version > 3:
		return nil, fmt.Errorf("%w %d: versions 2 and 3 are read", ErrVersion, f.Version)
	}
	nTensors, nKV := p.u64(), p.u64()
	if p.err != nil {
		return nil, p.err
	}
	if nKV > uint64(p.left())/minKVBytes || nTensors > uint64(p.left())/minTensorBytes ||
		nKV*minKVBytes+nTensors*minTensorBytes > uint64(p.left()) {
		return nil, fmt.Errorf("%w: the header declares %d metadata entries and %d tensors, more than the %d bytes after it can hold",
			ErrTruncated, nKV, nTensors, p.left())
	}
	for range nKV {
		key := p.str("metadata key")
		vt := ValueType(p.u32())
		v := p.value(vt, key)
		if p.err != nil {
			return nil, p.err
		}
		if _, dup := f.kv[key]; dup {
			return nil, fmt.Errorf("%w: metadata key %q appears twice", ErrMalformed, key)
		}
		f.kv[key] = len(f.KV)
		f.KV = append(f.KV, KV{key, v})
	}
	if v, ok := f.Get("general.alignment"); ok {
		a, isU32 := v.V.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("%w: general.alignment is %v (%v), not a power of two of type u32", ErrMalformed, v, v.Type)
		}
		f.Alignment = int64(a)
	}
	names := make(map[string]bool)
	for range nTensors {
		t := p.tensorInfo()
		if p.err != nil {
			return nil, p.err
		}
		if names[t.Name] {
			return nil, fmt.Errorf("%w: tensor %q appears twice", ErrMalformed, t.Name)
		}
		names[t.Name] = true
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = pad(p.pos, f.Alignment)
	if f.DataOffset > size && len(f.Tensors) > 0 {
		return nil, fmt.Errorf("%w: the data section would start at byte %d of a %d-byte file", ErrTruncated, f.DataOffset, size)
	}
	var next int64
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset != next {
			return nil, fmt.Errorf("%w: tensor %q: data at offset %d, expected %d (each tensor follows the one before, aligned to %d bytes)",
				ErrMalformed, t.Name, t.Offset, next, f.Alignment)
		}
		if t.Size > size || f.DataOffset+t.Offset > size-t.Size {
			return nil, fmt.Errorf("%w: tensor %q: %d bytes at byte %d of a %d-byte file", ErrTruncated, t.Name, t.Size, f.DataOffset+t.Offset, size)
		}
		next = t.Offset + pad(t.Size, f.Alignment)
	}
	return f, nil
}

// pad rounds n up to a multiple of align (a power of two); n and align are
// at most the file's size, so the sum cannot overflow.
func pad(n, align int64) int64 { return (n + align - 1) &^ (align - 1) }

// parser reads the header sequentially, keeping the first error.
type parser struct {
	r         *bufio.Reader
	pos, size int64
	err       error
	buf       [8]byte
}

func (p *parser) left() int64 { return p.size - p.pos }

func (p *parser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// bytes reads n bytes, which must be in the file: memory never exceeds
// what the file holds.
func (p *parser) bytes(n int64) []byte {
	if p.err != nil {
		return nil
	}
	if n < 0 || n > p.left() {
		p.fail(fmt.Errorf("%w: %d bytes needed at byte %d, %d left", ErrTruncated, n, p.pos, max(p.left(), 0)))
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("%w: the file ended at byte %d", ErrTruncated, p.pos)
		}
		p.fail(err)
		return nil
	}
	p.pos += n
	return b
}

func (p *parser) fixed(n int) []byte {
	if p.err != nil {
		return p.buf[:n]
	}
	if int64(n) > p.left() {
		p.fail(fmt.Errorf("%w: %d bytes needed at byte %d, %d left", ErrTruncated, n, p.pos, max(p.left(), 0)))
		return p.buf[:n]
	}
	if _, err := io.ReadFull(p.r, p.buf[:n]); err != nil {
		p.fail(fmt.Errorf("%w: the file ended at byte %d", ErrTruncated, p.pos))
	}
	p.pos += int64(n)
	return p.buf[:n]
}

func (p *parser) u8() uint8   { return p.fixed(1)[0] }
func (p *parser) u16() uint16 { return binary.LittleEndian.Uint16(p.fixed(2)) }
func (p *parser) u32() uint32 { return binary.LittleEndian.Uint32(p.fixed(4)) }
func (p *parser) u64() uint64 { return binary.LittleEndian.Uint64(p.fixed(8)) }

// str reads a string: a u64 length, then its bytes.
func (p *parser) str(what string) string {
	n := p.u64()
	if p.err == nil && n > uint64(p.left()) {
		p.fail(fmt.Errorf("%w: %s of %d bytes at byte %d, %d left", ErrTruncated, what, n, p.pos-8, p.left()))
	}
	return string(p.bytes(int64(n)))
}

func (p *parser) scalar(t ValueType) any {
	switch t {
	case Uint8:
		return p.u8()
	case Int8:
		return int8(p.u8())
	case Uint16:
		return p.u16()
	case Int16:
		return int16(p.u16())
	case Uint32:
		return p.u32()
	case Int32:
		return int32(p.u32())
	case Float32:
		return math.Float32frombits(p.u32())
	case Bool:
		b := p.u8()
		if b > 1 && p.err == nil {
			p.fail(fmt.Errorf("%w: boolean %d at byte %d", ErrMalformed, b, p.pos-1))
		}
		return b == 1
	case String:
		return p.str("string")
	case Uint64:
		return p.u64()
	case Int64:
		return int64(p.u64())
	case Float64:
		return math.Float64frombits(p.u64())
	}
	return nil
}

// value reads a value of type t for key.
func (p *parser) value(t ValueType, key string) Value {
	if p.err != nil {
		return Value{}
	}
	if t > Float64 {
		p.fail(fmt.Errorf("%w: metadata %q has value type %d", ErrMalformed, key, uint32(t)))
		return Value{}
	}
	if t != Array {
		return Value{Type: t, V: p.scalar(t)}
	}
	et := ValueType(p.u32())
	n := p.u64()
	if p.err != nil {
		return Value{}
	}
	if et > Float64 || et == Array {
		p.fail(fmt.Errorf("%w: metadata %q is an array of %v", ErrMalformed, key, et))
		return Value{}
	}
	if n > uint64(p.left())/uint64(valueSizes[et]) {
		p.fail(fmt.Errorf("%w: metadata %q declares %d elements of %v, more than the %d bytes left can hold", ErrTruncated, key, n, et, p.left()))
		return Value{}
	}
	return Value{Type: Array, Elem: et, V: p.array(et, int(n))}
}

func (p *parser) array(t ValueType, n int) any {
	switch t {
	case Uint8:
		return fill[uint8](p, t, n)
	case Int8:
		return fill[int8](p, t, n)
	case Uint16:
		return fill[uint16](p, t, n)
	case Int16:
		return fill[int16](p, t, n)
	case Uint32:
		return fill[uint32](p, t, n)
	case Int32:
		return fill[int32](p, t, n)
	case Float32:
		return fill[float32](p, t, n)
	case Bool:
		return fill[bool](p, t, n)
	case String:
		return fill[string](p, t, n)
	case Uint64:
		return fill[uint64](p, t, n)
	case Int64:
		return fill[int64](p, t, n)
	}
	return fill[float64](p, t, n)
}

func fill[T any](p *parser, t ValueType, n int) []T {
	s := make([]T, n)
	for i := range s {
		if p.err != nil {
			return nil
		}
		s[i] = p.scalar(t).(T)
	}
	return s
}

func (p *parser) tensorInfo() TensorInfo {
	var t TensorInfo
	t.Name = p.str("tensor name")
	if p.err != nil {
		return t
	}
	if len(t.Name) > maxNameLen {
		p.fail(fmt.Errorf("%w: tensor name of %d bytes (at most %d): %.80q", ErrMalformed, len(t.Name), maxNameLen, t.Name))
		return t
	}
	nd := p.u32()
	if p.err == nil && nd > maxDims {
		p.fail(fmt.Errorf("%w: tensor %q has %d dimensions (at most %d)", ErrMalformed, t.Name, nd, maxDims))
		return t
	}
	t.Dims = make([]int64, nd)
	n := int64(1)
	for i := range t.Dims {
		d := p.u64()
		if p.err != nil {
			return t
		}
		if d > math.MaxInt64 || (d != 0 && n > math.MaxInt64/int64(d)) {
			p.fail(fmt.Errorf("%w: tensor %q: element count of dimensions %v… overflows", ErrMalformed, t.Name, append(t.Dims[:i:i], int64(d))))
			return t
		}
		t.Dims[i] = int64(d)
		n *= int64(d)
	}
	t.Type = Type(p.u32())
	off := p.u64()
	if p.err != nil {
		return t
	}
	ti, ok := types[t.Type]
	if !ok {
		p.fail(fmt.Errorf("%w: tensor %q has ggml type %d, which does not exist", ErrMalformed, t.Name, uint32(t.Type)))
		return t
	}
	row := int64(1)
	if nd > 0 {
		row = t.Dims[0]
	}
	if row%int64(ti.blockLen) != 0 {
		p.fail(fmt.Errorf("%w: tensor %q: rows of %d elements are not whole %v blocks of %d", ErrMalformed, t.Name, row, t.Type, ti.blockLen))
		return t
	}
	size, err := mulCheck(n/int64(ti.blockLen), int64(ti.blockBytes))
	if err != nil {
		p.fail(fmt.Errorf("tensor %q: %w", t.Name, err))
		return t
	}
	if off > math.MaxInt64 {
		p.fail(fmt.Errorf("%w: tensor %q: offset %d", ErrMalformed, t.Name, off))
		return t
	}
	t.Size, t.Offset = size, int64(off)
	return t
}
