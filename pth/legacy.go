package pth

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"

	"github.com/rwkvkit/rwkvkit/format"
)

// legacyProtocol is the protocol version pickled after the magic number.
const legacyProtocol = 1001

var legacyMagicValue, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// openLegacy reads the pre-1.6 layout: five pickles (magic number, protocol
// version, system info, the object, the list of storage keys), then for each
// key in that list an 8-byte little-endian element count and the storage's
// raw little-endian bytes. Only the counts are read, to place the storages.
func openLegacy(r io.ReaderAt, size int64) (*format.Source, error) {
	br := bufio.NewReader(io.NewSectionReader(r, 0, size))
	pos := int64(0)
	next := func(what string, l *loader) (any, error) {
		pkl, err := scanPickle(br, size-pos, false)
		if err != nil {
			return nil, fmt.Errorf("legacy %s pickle at byte %d: %w", what, pos, err)
		}
		pos += int64(len(pkl))
		v, err := l.unpickle(pkl)
		if err != nil {
			return nil, fmt.Errorf("legacy %s pickle: %w", what, err)
		}
		return v, nil
	}
	b := budget(size)
	plain := &loader{budget: b, resolve: func(key string, _ int64) (*storage, error) {
		return nil, fmt.Errorf("storage %s outside the main pickle", quote(key))
	}}
	v, err := next("magic", plain)
	if err != nil {
		return nil, err
	}
	if m, ok := v.(*big.Int); !ok || m.Cmp(legacyMagicValue) != 0 {
		return nil, fmt.Errorf("legacy magic number is %s: %w", typeName(v), ErrNotCheckpoint)
	}
	if v, err = next("protocol", plain); err != nil {
		return nil, err
	}
	if p, ok := v.(int64); !ok || p != legacyProtocol {
		return nil, fmt.Errorf("legacy protocol version is %s, want %d", typeName(v), legacyProtocol)
	}
	// The system info says whether the writer was little-endian, but the
	// storages are written little-endian whatever the machine.
	if _, err = next("system info", plain); err != nil {
		return nil, err
	}
	l := &loader{budget: b, legacy: true, storages: map[string]*storage{}, views: map[string]*storage{},
		resolve: func(string, int64) (*storage, error) { return &storage{off: -1}, nil }}
	obj, err := next("object", l)
	if err != nil {
		return nil, err
	}
	v, err = next("storage keys", plain)
	if err != nil {
		return nil, err
	}
	keys, ok := v.(*pyList)
	if !ok {
		return nil, fmt.Errorf("legacy storage keys are %s, not a list", typeName(v))
	}
	if err := placeStorages(r, size, pos, keys.items, l.storages); err != nil {
		return nil, err
	}
	return source(obj, r, false)
}

// placeStorages walks the data section from pos, checking each storage's
// element count against what the pickle declared.
func placeStorages(r io.ReaderAt, size, pos int64, keys []any, storages map[string]*storage) error {
	var hdr [8]byte
	for _, k := range keys {
		key, ok := k.(string)
		if !ok {
			return fmt.Errorf("legacy storage key is %s, not a string", typeName(k))
		}
		st, ok := storages[key]
		if !ok {
			return fmt.Errorf("legacy storage %s is listed but no tensor uses it", quote(key))
		}
		if st.off >= 0 {
			return fmt.Errorf("legacy storage %s is listed twice", quote(key))
		}
		if size-pos < 8 {
			return fmt.Errorf("legacy data ends before storage %s: %w", quote(key), ErrTruncated)
		}
		if _, err := r.ReadAt(hdr[:], pos); err != nil && err != io.EOF {
			return fmt.Errorf("legacy storage %s: %w", quote(key), err)
		}
		count := binary.LittleEndian.Uint64(hdr[:])
		es := int64(max(st.dtype.Size(), 1))
		if count > math.MaxInt64/uint64(es) || int64(count)*es != st.nbytes {
			return fmt.Errorf("legacy storage %s has %d elements in the file but %d in the pickle", quote(key), count, st.nbytes/es)
		}
		pos += 8
		if st.nbytes > size-pos {
			return fmt.Errorf("legacy storage %s of %d bytes at %d runs past the end of the %d-byte file: %w", quote(key), st.nbytes, pos, size, ErrTruncated)
		}
		st.off = pos
		pos += st.nbytes
	}
	for key, st := range storages {
		if st.off < 0 {
			return fmt.Errorf("legacy storage %s is missing from the data section", quote(key))
		}
	}
	return nil
}
