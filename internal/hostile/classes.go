package hostile

import (
	"fmt"
	"strings"
)

// BigString starts a pickle that memoizes a string of n bytes as memo 0.
func BigString(n int) *Pickle {
	return NewPickle().Str(strings.Repeat("A", n)).Op('q', 0)
}

// ReduceOnList is a pickle that calls a list holding one memoized n-byte
// string refs times: an unpickler that prints the value it cannot call
// (gopickle's %#v) makes an error of n·refs bytes out of n + 2·refs.
func ReduceOnList(n, refs int) []byte {
	return BigString(n).Op(']').Refs(refs).Op('e', ')', 'R', '.').Bytes()
}

// Aliased is the pickle of n tensors named w0, w1, … that all view the
// whole of storage "0" of numel float32 elements. With memoized, the
// first tensor object is memoized and the others refer to it, two bytes
// each.
func Aliased(n int, numel int64, memoized bool) []byte {
	p := NewPickle().Op('}', '(')
	for i := range n {
		p.Str(fmt.Sprint("w", i))
		if memoized && i > 0 {
			p.Op('h', 1)
			continue
		}
		p.Global("torch._utils", "_rebuild_tensor_v2").Op('(')
		p.Op('(').Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(numel).Op('t', 'Q')
		p.Int(0).Ints(numel).Ints(1).Op(0x89).Global("collections", "OrderedDict").Op(')', 'R', 't', 'R')
		if memoized {
			p.Op('q', 1)
		}
	}
	return p.Op('u', '.').Bytes()
}

// LongList is a pickle of about size bytes holding one list of small
// integers, two pickle bytes each: the most values per byte a pickle can
// ask an unpickler to hold.
func LongList(size int) []byte {
	b := make([]byte, 0, size+8)
	b = append(b, 0x80, 2, ']', '(')
	for len(b) < size {
		b = append(b, 'K', 1)
	}
	return append(b, 'e', '.')
}
