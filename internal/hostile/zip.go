package hostile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
)

// A Record is one file of a zip archive.
type Record struct {
	Name string
	Data []byte
}

// Zip writes a zip of stored records, or deflated ones if deflate.
func Zip(deflate bool, recs ...Record) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, r := range recs {
		h := &zip.FileHeader{Name: r.Name, Method: zip.Store}
		if deflate {
			h.Method = zip.Deflate
		}
		f, err := w.CreateHeader(h)
		if err != nil {
			panic(err) // only for names zip cannot hold, which no test uses
		}
		f.Write(r.Data)
	}
	w.Close()
	return buf.Bytes()
}

// Checkpoint is a zip checkpoint under archive/ with the given pickle and
// storages data/<key>, in the order of their keys.
func Checkpoint(pkl []byte, storages map[string][]byte) []byte {
	recs := []Record{{"archive/data.pkl", pkl}, {"archive/byteorder", []byte("little")}}
	keys := make([]string, 0, len(storages))
	for k := range storages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		recs = append(recs, Record{"archive/data/" + k, storages[k]})
	}
	return Zip(false, recs...)
}

// F32 returns the little-endian bytes of 0, 1, …, n-1 as float32.
func F32(n int) []byte {
	b := make([]byte, 0, 4*n)
	for i := range n {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(i)))
	}
	return b
}

// OverlappingRecords is a zip checkpoint whose central directory lists
// records data/0 … data/n-1, all pointing at the one local record of data:
// n distinct storages on one stretch of the file.
func OverlappingRecords(pkl, data []byte, n int) []byte {
	b := Zip(false, Record{"archive/data.pkl", pkl}, Record{"archive/data/0", data})
	end := bytes.Index(b, []byte("PK\x05\x06"))
	cd := bytes.Index(b, []byte("PK\x01\x02"))
	// The second central directory entry is data/0's.
	second := cd + 46 + int(binary.LittleEndian.Uint16(b[cd+28:])) + int(binary.LittleEndian.Uint16(b[cd+30:])) + int(binary.LittleEndian.Uint16(b[cd+32:]))
	entry := b[second:end]
	out := slices.Clone(b[:end])
	for i := 1; i < n; i++ {
		name := fmt.Sprint("archive/data/", i)
		e := slices.Clone(entry[:46])
		binary.LittleEndian.PutUint16(e[28:], uint16(len(name)))
		binary.LittleEndian.PutUint16(e[30:], 0)
		binary.LittleEndian.PutUint16(e[32:], 0)
		out = append(append(out, e...), name...)
	}
	tail := slices.Clone(b[end:])
	binary.LittleEndian.PutUint16(tail[8:], uint16(n+1))
	binary.LittleEndian.PutUint16(tail[10:], uint16(n+1))
	binary.LittleEndian.PutUint32(tail[12:], uint32(len(out)-cd))
	return append(out, tail...)
}

// Legacy lays out a legacy (torch < 1.6) checkpoint around the main pickle:
// the magic number, protocol and system-info pickles before it, the list
// of storage keys and the storages (an 8-byte float32 count, then the
// bytes) after it.
func Legacy(main []byte, keys []string, storages ...[]byte) []byte {
	out := []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.") // 0x1950a86a20f9469cfc6c
	out = append(out, NewPickle().Int(1001).Op('.').Bytes()...)
	out = append(out, NewPickle().Op('}', '.').Bytes()...)
	out = append(out, main...)
	kp := NewPickle().Op(']', '(')
	for _, k := range keys {
		kp.Str(k)
	}
	out = append(out, kp.Op('e', '.').Bytes()...)
	for _, s := range storages {
		out = binary.LittleEndian.AppendUint64(out, uint64(len(s)/4))
		out = append(out, s...)
	}
	return out
}
