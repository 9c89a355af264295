package tokenizer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"unicode/utf8"
)

// A SyntaxError reports a malformed entry of a vocabulary file.
type SyntaxError struct {
	Line int // 1-based line of the text form; 0 in the JSON form
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// maxLine bounds a line of the text form; the longest World token is 128
// bytes, which takes at most 512 bytes to write.
const maxLine = 64 << 10

// LoadFile reads a vocabulary file in either form [Load] accepts.
func LoadFile(path string) (*Vocab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	v, err := load(f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return v, nil
}

// Load reads a vocabulary, telling its form from the first bytes:
//
//   - the text form of rwkv_vocab_v20230424.txt, one token a line:
//     "<id> <Python str or bytes literal> <length in bytes>", where a str
//     stands for its UTF-8 encoding and the length is checked;
//   - the JSON form, an object mapping each id (a decimal string) to the
//     token as a string (its UTF-8 encoding) or an array of byte values.
//
// Ids start at 1; 0 is EndOfText. Every single byte must be a token, so that
// any text can be encoded.
func Load(r io.Reader) (*Vocab, error) {
	v, err := load(r)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return v, nil
}

func load(r io.Reader) (*Vocab, error) {
	br := bufio.NewReaderSize(r, maxLine)
	head, err := br.Peek(64)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) { // a UTF-8 byte order mark
		br.Discard(3)
		head = head[3:]
	}
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("empty vocabulary file")
	case trimmed[0] == '{':
		return loadJSON(br)
	case '0' <= trimmed[0] && trimmed[0] <= '9':
		return loadText(br, 0)
	}
	return nil, fmt.Errorf("not a vocabulary: want \"<id> <literal> <length>\" lines or a JSON object, file starts with %q", head[:min(len(head), 16)])
}

// loadText reads the text form; sizeHint, if known, is the size of the
// input, which bounds the token bytes and the number of tokens.
func loadText(r io.Reader, sizeHint int) (*Vocab, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	var (
		data = make([]byte, 0, sizeHint/4)
		es   = make([]entry, 0, sizeHint/16)
		seen []int32 // line defining each id, 0 if none yet
	)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		start := len(data)
		id, tok, err := parseLine(b, data)
		if err != nil {
			return nil, &SyntaxError{Line: line, Msg: err.Error()}
		}
		if int(id) >= len(seen) {
			// ids are bounded by maxID, so this stays small.
			seen = slices.Grow(seen, int(id)+1-len(seen))[:int(id)+1]
		}
		if prev := seen[id]; prev != 0 {
			return nil, &SyntaxError{Line: line, Msg: fmt.Sprintf("id %d already defined on line %d", id, prev)}
		}
		seen[id] = int32(line)
		if len(tok) > maxBytes {
			return nil, &SyntaxError{Line: line, Msg: fmt.Sprintf("tokens exceed %d bytes in all", maxBytes)}
		}
		data = tok
		es = append(es, entry{id: id, start: uint32(start), end: uint32(len(data))})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &SyntaxError{Line: line + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLine)}
		}
		return nil, err
	}
	return newVocab(data, es)
}

// parseLine parses "<id> <literal> <length>" and appends the token's bytes
// to data.
func parseLine(b, data []byte) (int32, []byte, error) {
	sp := bytes.IndexByte(b, ' ')
	last := bytes.LastIndexByte(b, ' ')
	if sp <= 0 || last == sp {
		return 0, data, fmt.Errorf("want \"<id> <literal> <length>\", got %q", clip(b))
	}
	id, err := parseID(b[:sp])
	if err != nil {
		return 0, data, err
	}
	n, err := strconv.Atoi(string(b[last+1:]))
	if err != nil || n < 0 {
		return 0, data, fmt.Errorf("token %d: bad byte length %q", id, clip(b[last+1:]))
	}
	start := len(data)
	data, err = appendLiteral(data, b[sp+1:last])
	if err != nil {
		return 0, data[:start], fmt.Errorf("token %d: %v", id, err)
	}
	if got := len(data) - start; got != n {
		return 0, data[:start], fmt.Errorf("token %d: literal is %d bytes, line says %d", id, got, n)
	}
	if n == 0 {
		return 0, data, fmt.Errorf("token %d: empty token", id)
	}
	return id, data, nil
}

func parseID(b []byte) (int32, error) {
	id, err := strconv.Atoi(string(b))
	if err != nil {
		return 0, fmt.Errorf("bad token id %q", clip(b))
	}
	if id < 1 || id > maxID {
		return 0, fmt.Errorf("token id %d out of range [1, %d] (0 is end-of-text)", id, maxID)
	}
	return int32(id), nil
}

// appendLiteral appends the bytes a Python str or bytes literal stands for,
// a str meaning its UTF-8 encoding. Escapes follow the Python reference;
// an unrecognised escape keeps its backslash, as Python does.
func appendLiteral(dst, lit []byte) ([]byte, error) {
	isBytes := false
	if len(lit) > 0 && (lit[0] == 'b' || lit[0] == 'B') {
		isBytes, lit = true, lit[1:]
	}
	if len(lit) < 2 || (lit[0] != '\'' && lit[0] != '"') || lit[len(lit)-1] != lit[0] {
		return dst, fmt.Errorf("want a quoted str or bytes literal, got %q", clip(lit))
	}
	quote, body := lit[0], lit[1:len(lit)-1]
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c == quote:
			return dst, fmt.Errorf("unescaped quote inside literal %q", clip(lit))
		case c != '\\':
			if c < utf8.RuneSelf {
				dst = append(dst, c)
				i++
				continue
			}
			if isBytes {
				return dst, fmt.Errorf("non-ASCII byte 0x%02x in bytes literal", c)
			}
			r, size := utf8.DecodeRune(body[i:])
			if r == utf8.RuneError && size == 1 {
				return dst, fmt.Errorf("invalid UTF-8 byte 0x%02x in str literal", c)
			}
			dst = append(dst, body[i:i+size]...)
			i += size
			continue
		}
		if i+1 >= len(body) {
			return dst, fmt.Errorf("literal %q ends inside an escape", clip(lit))
		}
		e := body[i+1]
		i += 2
		if b, ok := simpleEscape(e); ok {
			dst = append(dst, b)
			continue
		}
		var (
			v     rune
			width int
		)
		switch {
		case '0' <= e && e <= '7':
			// Up to three octal digits, the first already read.
			v = rune(e - '0')
			for k := 0; k < 2 && i < len(body) && '0' <= body[i] && body[i] <= '7'; k++ {
				v = v*8 + rune(body[i]-'0')
				i++
			}
		case e == 'x':
			width = 2
		case e == 'u' && !isBytes:
			width = 4
		case e == 'U' && !isBytes:
			width = 8
		case e == 'N' && !isBytes:
			return dst, errors.New(`named escape \N{...} is not supported`)
		default:
			dst = append(dst, '\\', e)
			continue
		}
		if width > 0 {
			if i+width > len(body) {
				return dst, fmt.Errorf("truncated \\%c escape in %q", e, clip(lit))
			}
			u, err := strconv.ParseUint(string(body[i:i+width]), 16, 32)
			if err != nil {
				return dst, fmt.Errorf("bad \\%c escape %q", e, body[i-2:i+width])
			}
			v = rune(u)
			i += width
		}
		switch {
		case isBytes && v > 0xff:
			return dst, fmt.Errorf("octal escape value %#o is not a byte", v)
		case isBytes:
			dst = append(dst, byte(v))
		case v > utf8.MaxRune || (0xd800 <= v && v <= 0xdfff):
			return dst, fmt.Errorf("code point U+%04X has no UTF-8 encoding", v)
		default:
			dst = utf8.AppendRune(dst, v)
		}
	}
	return dst, nil
}

func simpleEscape(e byte) (byte, bool) {
	switch e {
	case '\\', '\'', '"':
		return e, true
	case 'a':
		return '\a', true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	case 'v':
		return '\v', true
	}
	return 0, false
}

// clip shortens b for an error message.
func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
