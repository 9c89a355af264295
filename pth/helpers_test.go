package pth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// pk writes protocol-2 pickles opcode by opcode, the way CPython's pickler
// lays them out, so tests can say exactly what a hostile file contains.
type pk struct{ b []byte }

func newPickle() *pk { return &pk{b: []byte{0x80, 2}} }

func (p *pk) op(b ...byte) *pk { p.b = append(p.b, b...); return p }

func (p *pk) global(module, name string) *pk {
	return p.op('c').op([]byte(module + "\n" + name + "\n")...)
}

func (p *pk) str(s string) *pk {
	p.op('X').op(binary.LittleEndian.AppendUint32(nil, uint32(len(s)))...)
	return p.op([]byte(s)...)
}

func (p *pk) int(n int64) *pk {
	switch {
	case n >= 0 && n < 256:
		return p.op('K', byte(n))
	case n >= 0 && n < 65536:
		return p.op('M').op(binary.LittleEndian.AppendUint16(nil, uint16(n))...)
	case n >= -1<<31 && n < 1<<31:
		return p.op('J').op(binary.LittleEndian.AppendUint32(nil, uint32(n))...)
	}
	return p.op(0x8a, 8).op(binary.LittleEndian.AppendUint64(nil, uint64(n))...)
}

func (p *pk) ints(v ...int64) *pk {
	p.op('(')
	for _, n := range v {
		p.int(n)
	}
	return p.op('t')
}

func (p *pk) bytes() []byte { return p.b }

// tensorSpec is one _rebuild_tensor_v2 entry of a state dict.
type tensorSpec struct {
	name, key, storageType string
	numel, offset          int64
	shape, stride          []int64
}

// entry appends name → _rebuild_tensor_v2(...) as torch.save writes it.
func (p *pk) entry(t tensorSpec) *pk {
	p.str(t.name).global("torch._utils", "_rebuild_tensor_v2").op('(')
	p.op('(').str("storage").global("torch", t.storageType).str(t.key).str("cpu").int(t.numel).op('t', 'Q')
	p.int(t.offset).ints(t.shape...).ints(t.stride...).op(0x89)
	p.global("collections", "OrderedDict").op(')', 'R')
	return p.op('t', 'R')
}

// stateDict is the pickle of {name: tensor, ...}.
func stateDict(ts ...tensorSpec) []byte {
	p := newPickle().op('}', '(')
	for _, t := range ts {
		p.entry(t)
	}
	return p.op('u', '.').bytes()
}

type record struct {
	name string
	data []byte
}

// buildZip writes a zip of stored records, or deflated ones if deflate.
func buildZip(t testing.TB, deflate bool, recs ...record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, r := range recs {
		h := &zip.FileHeader{Name: r.name, Method: zip.Store}
		if deflate {
			h.Method = zip.Deflate
		}
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(r.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkpoint is a zip checkpoint under archive/ with the given pickle and
// storages data/<key>.
func checkpoint(t testing.TB, pkl []byte, storages map[string][]byte) []byte {
	recs := []record{{"archive/data.pkl", pkl}, {"archive/byteorder", []byte("little")}}
	for k, v := range storages {
		recs = append(recs, record{"archive/data/" + k, v})
	}
	return buildZip(t, false, recs...)
}

// f32 returns the little-endian bytes of 0, 1, …, n-1 as float32.
func f32(n int) []byte {
	var b []byte
	for i := range n {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(i)))
	}
	return b
}
