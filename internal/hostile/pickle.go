// Package hostile builds crafted model files for tests of how the readers
// and the commands bear them: pickles written opcode by opcode, the way
// CPython's pickler lays them out, so a test can say exactly what a hostile
// file contains; zip checkpoints around them; and the classes of input that
// cost a reader far more than their size (aliasing, memoized references,
// long runs of cheap opcodes, overlapping zip records).
package hostile

import (
	"encoding/binary"
)

// A Pickle is a protocol-2 pickle being written.
type Pickle struct{ b []byte }

// NewPickle starts a pickle with its PROTO opcode.
func NewPickle() *Pickle { return &Pickle{b: []byte{0x80, 2}} }

// Op appends raw opcode bytes.
func (p *Pickle) Op(b ...byte) *Pickle { p.b = append(p.b, b...); return p }

// Global appends GLOBAL module.name.
func (p *Pickle) Global(module, name string) *Pickle {
	return p.Op('c').Op([]byte(module + "\n" + name + "\n")...)
}

// Str appends a BINUNICODE string.
func (p *Pickle) Str(s string) *Pickle {
	p.Op('X').Op(binary.LittleEndian.AppendUint32(nil, uint32(len(s)))...)
	return p.Op([]byte(s)...)
}

// Int appends n in the shortest opcode CPython would use.
func (p *Pickle) Int(n int64) *Pickle {
	switch {
	case n >= 0 && n < 256:
		return p.Op('K', byte(n))
	case n >= 0 && n < 65536:
		return p.Op('M').Op(binary.LittleEndian.AppendUint16(nil, uint16(n))...)
	case n >= -1<<31 && n < 1<<31:
		return p.Op('J').Op(binary.LittleEndian.AppendUint32(nil, uint32(n))...)
	}
	return p.Op(0x8a, 8).Op(binary.LittleEndian.AppendUint64(nil, uint64(n))...)
}

// Ints appends a tuple of integers.
func (p *Pickle) Ints(v ...int64) *Pickle {
	p.Op('(')
	for _, n := range v {
		p.Int(n)
	}
	return p.Op('t')
}

// Refs appends a MARK and n references (BINGET) to memo 0.
func (p *Pickle) Refs(n int) *Pickle {
	p.Op('(')
	for range n {
		p.Op('h', 0)
	}
	return p
}

// Bytes returns the pickle so far.
func (p *Pickle) Bytes() []byte { return p.b }

// A TensorSpec is one _rebuild_tensor_v2 entry of a state dict.
type TensorSpec struct {
	Name, Key, StorageType string
	Numel, Offset          int64
	Shape, Stride          []int64
}

// Entry appends name → _rebuild_tensor_v2(...) as torch.save writes it.
func (p *Pickle) Entry(t TensorSpec) *Pickle {
	p.Str(t.Name).Global("torch._utils", "_rebuild_tensor_v2").Op('(')
	p.Op('(').Str("storage").Global("torch", t.StorageType).Str(t.Key).Str("cpu").Int(t.Numel).Op('t', 'Q')
	p.Int(t.Offset).Ints(t.Shape...).Ints(t.Stride...).Op(0x89)
	p.Global("collections", "OrderedDict").Op(')', 'R')
	return p.Op('t', 'R')
}

// StateDict is the pickle of {name: tensor, ...}.
func StateDict(ts ...TensorSpec) []byte {
	p := NewPickle().Op('}', '(')
	for _, t := range ts {
		p.Entry(t)
	}
	return p.Op('u', '.').Bytes()
}
