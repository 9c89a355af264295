package pth

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
)

// The opcodes of the unpickler, as Python's pickle module runs them.

// arg returns the n argument bytes of the current opcode (already checked
// by the scanner, checked again so that this never reads out of range).
func (m *machine) arg(at, n int) ([]byte, error) {
	if n < 0 || at+n > len(m.pkl) {
		return nil, m.malformed("the argument runs past the end")
	}
	return m.pkl[at : at+n], nil
}

func (m *machine) run() (any, error) {
	for p := 0; p < len(m.pkl); {
		m.pos = p
		op := m.pkl[p]
		p++
		var err error
		switch op {
		case 0x80: // PROTO
			p++
		case '.': // STOP
			return m.pop()
		case '(': // MARK
			if len(m.marks) == MaxNesting {
				return nil, m.malformed("marks nest deeper than %d", MaxNesting)
			}
			m.marks = append(m.marks, len(m.stack))
		case '0': // POP: the top item, or the mark if none is above it
			if len(m.stack) > m.floor() {
				_, err = m.pop()
			} else {
				_, err = m.popMark()
			}
		case '1': // POP_MARK
			_, err = m.popMark()
		case '2': // DUP
			var v any
			if v, err = m.top(); err == nil {
				err = m.push(v)
			}
		case 'N':
			err = m.push(nil)
		case 0x88:
			err = m.push(true)
		case 0x89:
			err = m.push(false)
		case ')':
			err = m.push(emptyTuple)
		case ']':
			if err = m.charge(24); err == nil {
				err = m.push(&pyList{})
			}
		case '}':
			if err = m.charge(32); err == nil {
				err = m.push(&pyDict{})
			}
		case 't': // TUPLE
			var items []any
			if items, err = m.popMark(); err == nil {
				var t *pyTuple
				if t, err = m.tuple(items); err == nil {
					err = m.push(t)
				}
			}
		case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
			n := int(op-0x85) + 1
			if len(m.stack)-n < m.floor() {
				return nil, m.malformed("%d items wanted, %d on the stack", n, len(m.stack)-m.floor())
			}
			var t *pyTuple
			if t, err = m.tuple(m.stack[len(m.stack)-n:]); err == nil {
				m.stack = m.stack[:len(m.stack)-n]
				err = m.push(t)
			}
		case 'K', 'M', 'J', 0x8a, 'G':
			p, err = m.number(op, p)
		case 'U', 'C', 0x8c, 'X', 'B':
			p, err = m.text(op, p)
		case 'h', 'j': // BINGET, LONG_BINGET
			var idx uint32
			if idx, p, err = m.memoIndex(op == 'j', p); err == nil {
				err = m.get(idx)
			}
		case 'q', 'r': // BINPUT, LONG_BINPUT
			var idx uint32
			if idx, p, err = m.memoIndex(op == 'r', p); err == nil {
				err = m.put(idx)
			}
		case 'c': // GLOBAL
			p, err = m.global(p)
		case 'Q': // BINPERSID
			err = m.persistent()
		case 'R': // REDUCE
			err = m.reduce()
		case 'b': // BUILD
			err = m.build()
		case 'a': // APPEND
			var v any
			if v, err = m.pop(); err == nil {
				err = m.appendList([]any{v})
			}
		case 'e': // APPENDS
			var items []any
			if items, err = m.popMark(); err == nil {
				err = m.appendList(items)
			}
		case 's': // SETITEM
			var k, v any
			if v, err = m.pop(); err == nil {
				if k, err = m.pop(); err == nil {
					err = m.setItems([]any{k, v})
				}
			}
		case 'u': // SETITEMS
			var items []any
			if items, err = m.popMark(); err == nil {
				err = m.setItems(items)
			}
		default:
			return nil, m.malformed("opcode 0x%02x", op) // refused by the scanner already
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("pickle ends without STOP: %w", ErrTruncated)
}

// number pushes the integer or float argument of op, which starts at p.
func (m *machine) number(op byte, p int) (int, error) {
	var n int
	switch op {
	case 'K':
		n = 1
	case 'M':
		n = 2
	case 'J':
		n = 4
	case 'G':
		n = 8
	}
	at := p
	if op == 0x8a { // LONG1: a length byte, then little-endian two's complement
		b, err := m.arg(p, 1)
		if err != nil {
			return 0, err
		}
		n, at = int(b[0]), p+1
	}
	b, err := m.arg(at, n)
	if err != nil {
		return 0, err
	}
	var v any
	switch op {
	case 'K':
		v = int64(b[0])
	case 'M':
		v = int64(binary.LittleEndian.Uint16(b))
	case 'J':
		v = int64(int32(binary.LittleEndian.Uint32(b)))
	case 'G':
		v = math.Float64frombits(binary.BigEndian.Uint64(b))
	case 0x8a:
		if n == 0 {
			return 0, m.malformed("LONG1 of no bytes")
		}
		if n <= 8 {
			var u uint64
			for i := n - 1; i >= 0; i-- {
				u = u<<8 | uint64(b[i])
			}
			if shift := 64 - 8*n; shift > 0 {
				u = uint64(int64(u<<shift) >> shift) // sign-extend
			}
			v = int64(u)
		} else {
			if err := m.charge(64 + int64(n)); err != nil {
				return 0, err
			}
			be := make([]byte, n)
			for i := range b {
				be[n-1-i] = b[i]
			}
			x := new(big.Int).SetBytes(be)
			if b[n-1]&0x80 != 0 {
				x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
			}
			v = x
		}
	}
	if err := m.charge(8); err != nil {
		return 0, err
	}
	return at + n, m.push(v)
}

// text pushes the string or bytes argument of op, which starts at p.
func (m *machine) text(op byte, p int) (int, error) {
	var n, at int
	switch op {
	case 'U', 'C', 0x8c:
		b, err := m.arg(p, 1)
		if err != nil {
			return 0, err
		}
		n, at = int(b[0]), p+1
	default:
		b, err := m.arg(p, 4)
		if err != nil {
			return 0, err
		}
		n, at = int(binary.LittleEndian.Uint32(b)), p+4
	}
	b, err := m.arg(at, n)
	if err != nil {
		return 0, err
	}
	if op == 'C' || op == 'B' {
		// Bytes stay a view of the pickle, which outlives them.
		if err := m.charge(24); err != nil {
			return 0, err
		}
		return at + n, m.push(b)
	}
	if err := m.charge(16 + int64(n)); err != nil {
		return 0, err
	}
	return at + n, m.push(string(b))
}

func (m *machine) memoIndex(long bool, p int) (uint32, int, error) {
	if long {
		b, err := m.arg(p, 4)
		if err != nil {
			return 0, 0, err
		}
		return binary.LittleEndian.Uint32(b), p + 4, nil
	}
	b, err := m.arg(p, 1)
	if err != nil {
		return 0, 0, err
	}
	return uint32(b[0]), p + 1, nil
}

func (m *machine) get(idx uint32) error {
	if int64(idx) < int64(len(m.memo)) {
		return m.push(m.memo[idx])
	}
	if v, ok := m.sparse[idx]; ok {
		return m.push(v)
	}
	return m.malformed("memo %d was never set", idx)
}

func (m *machine) put(idx uint32) error {
	v, err := m.top()
	if err != nil {
		return err
	}
	switch {
	case int64(idx) < int64(len(m.memo)):
		m.memo[idx] = v
	case int64(idx) == int64(len(m.memo)):
		if m.memo, err = grow(m, m.memo, 1, slotSize); err != nil {
			return err
		}
		m.memo = append(m.memo, v)
	default:
		if _, ok := m.sparse[idx]; !ok {
			if err := m.charge(96); err != nil { // a map entry, with its share of the buckets
				return err
			}
		}
		if m.sparse == nil {
			m.sparse = map[uint32]any{}
		}
		m.sparse[idx] = v
	}
	return nil
}

// global pushes what the resolver makes of GLOBAL's module and name lines.
func (m *machine) global(p int) (int, error) {
	start, nl := p, -1
	for ; p < len(m.pkl); p++ {
		if m.pkl[p] == '\n' {
			if nl >= 0 {
				break
			}
			nl = p
		}
	}
	if p == len(m.pkl) {
		return 0, m.malformed("the name runs past the end")
	}
	key := m.pkl[start:p]
	if v, ok := m.globals[string(key)]; ok {
		return p + 1, m.push(v)
	}
	if err := m.charge(globalCost); err != nil {
		return 0, err
	}
	v, err := m.l.findClass(string(m.pkl[start:nl]), string(m.pkl[nl+1:p]))
	if err != nil {
		return 0, err
	}
	if m.globals == nil {
		m.globals = map[string]any{}
	}
	m.globals[string(key)] = v
	return p + 1, m.push(v)
}

func (m *machine) persistent() error {
	pid, err := m.pop()
	if err != nil {
		return err
	}
	if err := m.charge(storageCost); err != nil {
		return err
	}
	v, err := m.l.persistentLoad(pid)
	if err != nil {
		return fmt.Errorf("pickle: %w", err)
	}
	return m.push(v)
}

func (m *machine) reduce() error {
	args, err := m.pop()
	if err != nil {
		return err
	}
	fv, err := m.pop()
	if err != nil {
		return err
	}
	t, ok := args.(*pyTuple)
	if !ok {
		return m.malformed("the arguments are %s, not a tuple", typeName(args))
	}
	f, ok := fv.(*pyFunc)
	if !ok {
		return m.malformed("%s cannot be called", typeName(fv))
	}
	if err := m.charge(f.cost); err != nil {
		return err
	}
	v, err := f.Call(t.items...)
	if err != nil {
		return fmt.Errorf("pickle: %w", err)
	}
	return m.push(v)
}

// build is BUILD, which sets an object's state. torch pickles it only on
// an OrderedDict, whose attributes (_metadata) hold nothing this package
// reads; they are dropped.
func (m *machine) build() error {
	if _, err := m.pop(); err != nil { // the state
		return err
	}
	inst, err := m.top()
	if err != nil {
		return err
	}
	if d, ok := inst.(*pyDict); !ok || !d.ordered {
		return m.malformed("the state of %s cannot be set", typeName(inst))
	}
	return nil
}

func (m *machine) appendList(items []any) error {
	lv, err := m.top()
	if err != nil {
		return err
	}
	l, ok := lv.(*pyList)
	if !ok {
		return m.malformed("%s is not a list", typeName(lv))
	}
	if l.items, err = grow(m, l.items, len(items), slotSize); err != nil {
		return err
	}
	l.items = append(l.items, items...)
	return nil
}

// setItems adds key, value pairs to the dict on the stack. Keys must be
// hashable in Python's sense: a list or a dict is not.
func (m *machine) setItems(items []any) error {
	if len(items)%2 != 0 {
		return m.malformed("%d items, not key and value pairs", len(items))
	}
	dv, err := m.top()
	if err != nil {
		return err
	}
	d, ok := dv.(*pyDict)
	if !ok {
		return m.malformed("%s is not a dict", typeName(dv))
	}
	if d.entries, err = grow(m, d.entries, len(items)/2, entrySize); err != nil {
		return err
	}
	for i := 0; i < len(items); i += 2 {
		switch items[i].(type) {
		case *pyList, *pyDict:
			return m.malformed("a dict key is %s, which cannot be hashed", typeName(items[i]))
		}
		if _, ok := items[i+1].(*tensorRef); ok {
			if err := m.charge(tensorCost); err != nil {
				return err
			}
		}
		d.entries = append(d.entries, dictEntry{items[i], items[i+1]})
	}
	return nil
}
