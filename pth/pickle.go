package pth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/rwkvkit/rwkvkit/format"
)

// The unpickler is this package's own: it runs only the opcodes the
// scanner accepts, builds only inert values (the types below, strings,
// numbers, bytes, None and the resolver's torch values), never formats a
// value into an error (typeName describes one in a few words), and charges
// every allocation it makes against a budget proportional to the pickle.

// Python values of the unpickler. Tuples are immutable; lists and dicts
// are changed in place by APPEND(S) and SETITEM(S), as in Python.
type (
	pyTuple struct{ items []any }
	pyList  struct{ items []any }
	pyDict  struct {
		entries []dictEntry // in insertion order; a repeated key is resolved by dictEntries
		ordered bool        // a collections.OrderedDict, whose attributes BUILD may set
	}
)

type dictEntry struct{ key, value any }

// emptyTuple is every () of a pickle: immutable, so one is enough.
var emptyTuple = &pyTuple{}

// Memory budget. The unpickler charges what it allocates, rounded up the
// way Go's allocator rounds, against a budget of memPerByte bytes per byte
// of the file plus memSlack, and gives up once the budget is spent: a
// pickle that would push a value per byte, or alias one string a million
// times, is refused when it reaches the budget, not once memory runs out.
// The charge covers what becomes of a tensor entry in the source as well.
// A real checkpoint's pickle is a small part of its file (a few hundred
// bytes per tensor beside the tensor's data), and torch's pickles are
// charged about 20 bytes per pickle byte (TestBudgetOfRealPickles), so
// the budget binds only files that are mostly pickle.
const (
	memPerByte = 10
	memSlack   = 1 << 20
)

// budget is the memory budget of a file of size bytes.
func budget(size int64) *format.Budget { return format.NewBudget(size, memPerByte, memSlack) }

// Charges beyond the bytes of the values themselves.
const (
	slotSize   = 16  // an interface value in a stack, list, tuple or memo
	entrySize  = 32  // a dictEntry
	globalCost = 512 // a resolved global: its names, its value and its place in the cache
	// storageCost is a persistent id's storage and its place in the
	// loader's map; tensorRefCost a tensor descriptor with its shape and
	// stride.
	storageCost   = 160
	tensorRefCost = 160
	// tensorCost is a tensor entry's share of the source: its format.Tensor,
	// opener and place in the name index and tensor list.
	tensorCost = 320
)

type machine struct {
	l      *loader
	pkl    []byte
	pos    int // of the opcode being run
	stack  []any
	marks  []int // stack heights at each open MARK
	memo   []any
	sparse map[uint32]any // memo indices beyond len(memo), which torch never writes
	// globals caches what each GLOBAL's "module\nname" resolved to, so a
	// name repeated (as torch repeats its rebuild function) costs nothing.
	globals map[string]any
	budget  *format.Budget
}

// unpickle runs a pickle that scanPickle has accepted and returns the
// object it builds.
func (l *loader) unpickle(pkl []byte) (any, error) {
	if l.budget == nil {
		l.budget = budget(int64(len(pkl)))
	}
	m := &machine{l: l, pkl: pkl, budget: l.budget}
	if err := m.sizeMemo(); err != nil {
		return nil, err
	}
	v, err := m.run()
	if errors.Is(err, format.ErrBudget) {
		return nil, fmt.Errorf("pickle of %d bytes %w (more than %d bytes per byte of the file): not a state dict",
			len(pkl), err, memPerByte)
	}
	return v, err
}

func (m *machine) charge(n int64) error { return m.budget.Charge(n) }

// grow makes room for add more elements of size bytes in s, doubling its
// capacity and charging the new array.
func grow[T any](m *machine, s []T, add int, size int64) ([]T, error) {
	if len(s)+add <= cap(s) {
		return s, nil
	}
	c := max(2*cap(s), len(s)+add, 8)
	if err := m.charge(int64(c) * size); err != nil {
		return nil, err
	}
	out := make([]T, len(s), c)
	copy(out, s)
	return out, nil
}

// malformed is the error of an opcode whose operands are not what it
// needs: Python would raise there too.
func (m *machine) malformed(format string, a ...any) error {
	return fmt.Errorf("malformed pickle: %s at byte %d: %s", opcodes[m.pkl[m.pos]].name, m.pos, fmt.Sprintf(format, a...))
}

// sizeMemo allocates the memo once, instead of growing it, for as many
// entries as the pickle has PUT opcodes (torch numbers them 0, 1, 2, …)
// or as its largest PUT index asks for, whichever is less.
func (m *machine) sizeMemo() error {
	puts, top := int64(0), int64(0)
	for p := 0; p < len(m.pkl); {
		switch m.pkl[p] {
		case 'q':
			puts++
			if p+1 < len(m.pkl) {
				top = max(top, int64(m.pkl[p+1])+1)
			}
		case 'r':
			puts++
			if p+5 <= len(m.pkl) {
				top = max(top, int64(binary.LittleEndian.Uint32(m.pkl[p+1:]))+1)
			}
		}
		p = opEnd(m.pkl, p)
	}
	n := min(puts, top)
	if n == 0 {
		return nil
	}
	if err := m.charge(slotSize * n); err != nil {
		return err
	}
	m.memo = make([]any, 0, n)
	return nil
}

// opEnd returns where the opcode at p of a scanned pickle ends.
func opEnd(pkl []byte, p int) int {
	op := opcodes[pkl[p]]
	p++
	switch op.arg {
	case argFixed:
		p += op.n
	case argLen1:
		if p < len(pkl) {
			p += 1 + int(pkl[p])
		}
	case argLen4:
		if p+4 <= len(pkl) {
			p += 4 + int(binary.LittleEndian.Uint32(pkl[p:]))
		}
	case argLines:
		for range 2 {
			for p < len(pkl) && pkl[p] != '\n' {
				p++
			}
			p++
		}
	}
	return p
}

// floor is the lowest stack index the current opcode may pop: in Python
// a MARK starts a new stack, and nothing below it can be reached until the
// mark is popped.
func (m *machine) floor() int {
	if len(m.marks) == 0 {
		return 0
	}
	return m.marks[len(m.marks)-1]
}

func (m *machine) push(v any) error {
	var err error
	if m.stack, err = grow(m, m.stack, 1, slotSize); err != nil {
		return err
	}
	m.stack = append(m.stack, v)
	return nil
}

func (m *machine) pop() (any, error) {
	if len(m.stack) <= m.floor() {
		return nil, m.malformed("the stack is empty")
	}
	v := m.stack[len(m.stack)-1]
	m.stack[len(m.stack)-1] = nil
	m.stack = m.stack[:len(m.stack)-1]
	return v, nil
}

func (m *machine) top() (any, error) {
	if len(m.stack) <= m.floor() {
		return nil, m.malformed("the stack is empty")
	}
	return m.stack[len(m.stack)-1], nil
}

// popMark returns the items pushed since the last MARK and removes them
// and the mark. They alias the stack: copy them before the next push.
func (m *machine) popMark() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, m.malformed("no mark") // the scanner counts marks; kept for safety
	}
	at := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := m.stack[at:]
	m.stack = m.stack[:at]
	return items, nil
}

// tuple copies items into a new tuple.
func (m *machine) tuple(items []any) (*pyTuple, error) {
	if len(items) == 0 {
		return emptyTuple, nil
	}
	if err := m.charge(24 + slotSize*int64(len(items))); err != nil {
		return nil, err
	}
	return &pyTuple{items: slices.Clone(items)}, nil
}
