package pth

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Limits of the pickle scanner. A state dict's pickle is a few hundred bytes
// per tensor and nests marks a handful deep (a rebuild call's argument tuple
// inside the dict's SETITEMS).
const (
	// MaxPickleSize bounds the pickle of a checkpoint, which is read into
	// memory. A state dict's pickle is about 150 bytes per tensor.
	MaxPickleSize = 64 << 20
	// MaxNesting bounds how deep pickle marks may nest.
	MaxNesting = 64
	// maxGlobalName bounds each of the two lines of a GLOBAL opcode.
	maxGlobalName = 128
)

// GlobalError reports a pickle global that is not on the allowlist, the way
// to run code from a pickle.
type GlobalError struct {
	Module, Name string
}

func (e *GlobalError) Error() string {
	return fmt.Sprintf("unsupported pickle global %q", e.Module+"."+e.Name)
}

// ErrTruncated is wrapped by the errors of a file that ends too early.
var ErrTruncated = errors.New("file is truncated")

// Argument layouts of the accepted opcodes.
const (
	argNone = iota
	argFixed
	argLen1  // a 1-byte length, then that many bytes
	argLen4  // a 4-byte little-endian length, then that many bytes
	argLines // GLOBAL: module and name, each ending in '\n'
)

type opcode struct {
	name string
	arg  uint8
	n    int // bytes of a fixed argument
	mark int // +1 pushes a mark, -1 pops one
}

// opcodes lists what the scanner accepts: the binary opcodes of protocol 2
// that torch.save emits for state dicts (the set torch's own weights_only
// loader accepts, plus BINFLOAT, SHORT_BINUNICODE and the bytes opcodes).
// Text opcodes, INST/OBJ/NEWOBJ, extensions, frames and STACK_GLOBAL are left
// out: torch does not write them and they widen what a pickle can do.
var opcodes = [256]opcode{
	'(':  {name: "MARK", mark: +1},
	'.':  {name: "STOP"},
	'0':  {name: "POP"},
	'1':  {name: "POP_MARK", mark: -1},
	'2':  {name: "DUP"},
	'N':  {name: "NONE"},
	'Q':  {name: "BINPERSID"},
	'R':  {name: "REDUCE"},
	'a':  {name: "APPEND"},
	'b':  {name: "BUILD"},
	's':  {name: "SETITEM"},
	'u':  {name: "SETITEMS", mark: -1},
	'e':  {name: "APPENDS", mark: -1},
	't':  {name: "TUPLE", mark: -1},
	')':  {name: "EMPTY_TUPLE"},
	']':  {name: "EMPTY_LIST"},
	'}':  {name: "EMPTY_DICT"},
	0x85: {name: "TUPLE1"},
	0x86: {name: "TUPLE2"},
	0x87: {name: "TUPLE3"},
	0x88: {name: "NEWTRUE"},
	0x89: {name: "NEWFALSE"},
	0x80: {name: "PROTO", arg: argFixed, n: 1},
	'K':  {name: "BININT1", arg: argFixed, n: 1},
	'h':  {name: "BINGET", arg: argFixed, n: 1},
	'q':  {name: "BINPUT", arg: argFixed, n: 1},
	'M':  {name: "BININT2", arg: argFixed, n: 2},
	'J':  {name: "BININT", arg: argFixed, n: 4},
	'j':  {name: "LONG_BINGET", arg: argFixed, n: 4},
	'r':  {name: "LONG_BINPUT", arg: argFixed, n: 4},
	'G':  {name: "BINFLOAT", arg: argFixed, n: 8},
	'U':  {name: "SHORT_BINSTRING", arg: argLen1},
	'C':  {name: "SHORT_BINBYTES", arg: argLen1},
	0x8c: {name: "SHORT_BINUNICODE", arg: argLen1},
	0x8a: {name: "LONG1", arg: argLen1},
	'X':  {name: "BINUNICODE", arg: argLen4},
	'B':  {name: "BINBYTES", arg: argLen4},
	'c':  {name: "GLOBAL", arg: argLines},
}

// scanPickle reads one pickle from r, up to and including its STOP opcode,
// and returns its bytes after checking that every opcode is accepted, every
// global allowed, every length inside the limit bytes that r can still give,
// and marks nested at most MaxNesting deep. Only then is the pickle handed
// to the unpickler. When limit is the pickle's exact size (a zip record),
// its bytes are read into one buffer of that size.
func scanPickle(r *bufio.Reader, limit int64, exact bool) ([]byte, error) {
	limit = min(limit, MaxPickleSize+1)
	var buf []byte
	if exact && limit <= MaxPickleSize {
		buf = make([]byte, 0, limit)
	}
	depth := 0
	// take appends the next n bytes of r to buf.
	take := func(n int64) ([]byte, error) {
		if n > limit-int64(len(buf)) {
			if limit > MaxPickleSize {
				return nil, fmt.Errorf("pickle is larger than %d bytes", MaxPickleSize)
			}
			return nil, fmt.Errorf("pickle ends at byte %d, inside an opcode needing %d more bytes: %w", limit, n, ErrTruncated)
		}
		at := len(buf)
		buf = slices.Grow(buf, int(n))[:at+int(n)]
		if _, err := io.ReadFull(r, buf[at:]); err != nil {
			return nil, fmt.Errorf("pickle: %w", ErrTruncated)
		}
		return buf[at:], nil
	}
	for {
		pos := len(buf)
		b, err := take(1)
		if err != nil {
			if errors.Is(err, ErrTruncated) {
				return nil, fmt.Errorf("pickle ends without STOP after %d bytes: %w", pos, ErrTruncated)
			}
			return nil, err
		}
		op := opcodes[b[0]]
		if op.name == "" {
			return nil, fmt.Errorf("unsupported pickle opcode 0x%02x at byte %d", b[0], pos)
		}
		depth += op.mark
		if depth < 0 {
			return nil, fmt.Errorf("pickle %s at byte %d without a mark", op.name, pos)
		}
		if depth > MaxNesting {
			return nil, fmt.Errorf("pickle nests deeper than %d at byte %d", MaxNesting, pos)
		}
		switch op.arg {
		case argFixed:
			arg, err := take(int64(op.n))
			if err != nil {
				return nil, err
			}
			if b[0] == 0x80 && arg[0] > 5 {
				return nil, fmt.Errorf("unsupported pickle protocol %d", arg[0])
			}
		case argLen1:
			n, err := take(1)
			if err != nil {
				return nil, err
			}
			if b[0] == 0x8a && n[0] == 0 {
				// Python never writes it, and the unpickler cannot read it.
				return nil, fmt.Errorf("pickle LONG1 of no bytes at byte %d", pos)
			}
			if _, err := take(int64(n[0])); err != nil {
				return nil, err
			}
		case argLen4:
			n, err := take(4)
			if err != nil {
				return nil, err
			}
			size := int64(binary.LittleEndian.Uint32(n))
			if _, err := take(size); err != nil {
				return nil, err
			}
		case argLines:
			at := len(buf)
			if err := line(take); err != nil {
				return nil, err
			}
			mid := len(buf)
			if err := line(take); err != nil {
				return nil, err
			}
			// Looked up without allocating: a pickle of nothing but
			// GLOBALs costs the scanner nothing per opcode.
			var key [2*maxGlobalName + 1]byte
			k := append(append(append(key[:0], buf[at:mid-1]...), '.'), buf[mid:len(buf)-1]...)
			if _, ok := globals[string(k)]; !ok {
				return nil, &GlobalError{Module: string(buf[at : mid-1]), Name: string(buf[mid : len(buf)-1])}
			}
		}
		if b[0] == '.' {
			if depth != 0 {
				return nil, fmt.Errorf("pickle stops with %d marks open", depth)
			}
			return buf, nil
		}
	}
}

// line takes one newline-terminated GLOBAL argument.
func line(take func(int64) ([]byte, error)) error {
	for n := 0; ; n++ {
		b, err := take(1)
		if err != nil {
			return err
		}
		if b[0] == '\n' {
			return nil
		}
		if n == maxGlobalName {
			return fmt.Errorf("pickle GLOBAL name longer than %d bytes", maxGlobalName)
		}
	}
}
