package tokenizer

import (
	"io"
	"unicode/utf8"
)

// A StreamDecoder writes the bytes of tokens as they are generated, holding
// back a UTF-8 character whose bytes have not all arrived yet, so that no
// write ends inside a character.
//
// Bytes are never altered: everything written, once Flush is called, is
// exactly what Decode returns for the same ids. Bytes that cannot start or
// continue a valid character are passed on as they are, and a character
// left incomplete at the end is written as is by Flush. A caller that needs
// valid UTF-8 can apply strings.ToValidUTF8 to what it receives.
type StreamDecoder struct {
	tok     Tokenizer
	w       io.Writer
	pending []byte
	one     [1]int
	err     error
}

// NewStreamDecoder returns a StreamDecoder writing the tokens of tok to w.
func NewStreamDecoder(tok Tokenizer, w io.Writer) *StreamDecoder {
	return &StreamDecoder{tok: tok, w: w}
}

// WriteToken decodes id and writes every byte that completes a character
// or can never become part of one. An unknown id is an error wrapping
// ErrUnknownID and writes nothing. After a write error, all calls return it.
func (d *StreamDecoder) WriteToken(id int) error {
	if d.err != nil {
		return d.err
	}
	d.one[0] = id
	b, err := d.tok.Decode(d.one[:])
	if err != nil {
		return err
	}
	d.pending = append(d.pending, b...)
	n := completePrefix(d.pending)
	if n == 0 {
		return nil
	}
	return d.write(n)
}

// Flush writes the bytes held back, complete or not. Call it once the
// stream ends.
func (d *StreamDecoder) Flush() error {
	if d.err != nil {
		return d.err
	}
	return d.write(len(d.pending))
}

// Buffered returns the number of bytes held back.
func (d *StreamDecoder) Buffered() int { return len(d.pending) }

func (d *StreamDecoder) write(n int) error {
	if _, err := d.w.Write(d.pending[:n]); err != nil {
		d.err = err
		return err
	}
	d.pending = d.pending[:copy(d.pending, d.pending[n:])]
	return nil
}

// completePrefix returns the length of b without its trailing incomplete
// character: the bytes from the last start byte among the final
// utf8.UTFMax-1, when they are a proper prefix of a valid encoding.
func completePrefix(b []byte) int {
	for k := 1; k < utf8.UTFMax && k <= len(b); k++ {
		i := len(b) - k
		if utf8.RuneStart(b[i]) {
			// FullRune also reports true for bytes that can never begin
			// a valid character; those are not held back.
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}
