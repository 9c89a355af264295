// Package logits reads and writes logits files: the raw float32 values,
// little-endian, of one row per token position, each row as long as the
// vocabulary ([tokens, vocabulary], row-major), with no header. Row t holds
// the logits after tokens 0…t, which predict token t+1. numpy reads one
// with np.fromfile(path, "<f4").reshape(tokens, vocab).
package logits

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/format"
)

// bufValues is how many values Write converts at a time.
const bufValues = 1 << 16

// Write writes rows to w, in order, as little-endian float32.
func Write(w io.Writer, rows [][]float32) error {
	var buf []byte
	for _, row := range rows {
		for len(row) > 0 {
			n := min(len(row), bufValues)
			if len(buf) < 4*n {
				buf = make([]byte, 4*n)
			}
			for i, v := range row[:n] {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			if _, err := w.Write(buf[:4*n]); err != nil {
				return err
			}
			row = row[n:]
		}
	}
	return nil
}

// WriteFile writes rows to path through a temporary file renamed at the
// end (package atomicfile); an existing file is replaced only if force is
// set, and a path whose extension names a model format (.st, .rkv, .pth)
// is refused.
func WriteFile(ctx context.Context, path string, rows [][]float32, force bool) error {
	return WriteFileFrom(ctx, path, force, func(put func([][]float32) error) error { return put(rows) })
}

// WriteFileFrom writes to path, as WriteFile does, the rows fill hands to
// put, a few at a time and in order, so that they need not be held whole.
// The file appears only if fill returns nil.
func WriteFileFrom(ctx context.Context, path string, force bool, fill func(put func(rows [][]float32) error) error) error {
	if err := format.CheckExtension(path, ""); err != nil {
		return err
	}
	return atomicfile.WriteFile(ctx, path, atomicfile.Options{Force: force}, func(w io.Writer) error {
		return fill(func(rows [][]float32) error { return Write(w, rows) })
	})
}

// ReadFile reads a logits file of rows × vocab values and returns its rows.
// A file of any other size is an error naming it, and nothing is read.
func ReadFile(path string, rows, vocab int) ([][]float32, error) {
	f, err := Open(path, rows, vocab)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	flat := make([]float32, rows*vocab)
	out := Rows(flat, vocab)
	if err := f.ReadRows(0, out); err != nil {
		return nil, err
	}
	return out, nil
}

// A Reader reads rows of logits at any position of a logits file's bytes.
type Reader struct {
	r           io.ReaderAt
	name        string
	rows, vocab int
	buf         []byte
}

// NewReader reads logits of rows × vocab values from r; name is what its
// errors call it.
func NewReader(r io.ReaderAt, name string, rows, vocab int) *Reader {
	return &Reader{r: r, name: name, rows: rows, vocab: vocab}
}

// ReadRows fills dst with the rows of positions start, start+1, …; each row
// of dst must be vocab long.
func (r *Reader) ReadRows(start int, dst [][]float32) error {
	if start < 0 || start+len(dst) > r.rows {
		return fmt.Errorf("%s: rows %d…%d of %d", r.name, start, start+len(dst)-1, r.rows)
	}
	for i, row := range dst {
		if len(row) != r.vocab {
			return fmt.Errorf("%s: a row of %d values for a vocabulary of %d", r.name, len(row), r.vocab)
		}
		off := 4 * int64(start+i) * int64(r.vocab)
		for done := 0; done < len(row); {
			n := min(len(row)-done, bufValues)
			if len(r.buf) < 4*n {
				r.buf = make([]byte, 4*n)
			}
			if _, err := r.r.ReadAt(r.buf[:4*n], off+4*int64(done)); err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			for j := range n {
				row[done+j] = math.Float32frombits(binary.LittleEndian.Uint32(r.buf[4*j:]))
			}
			done += n
		}
	}
	return nil
}

// A File is a logits file open for reading rows.
type File struct {
	*Reader
	f *os.File
}

// Open opens the logits file at path, which must hold rows × vocab values:
// a file of any other size is an error naming it.
func Open(path string, rows, vocab int) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	want := 4 * int64(rows) * int64(vocab)
	if !fi.Mode().IsRegular() || fi.Size() != want {
		f.Close()
		return nil, fmt.Errorf("%s: %d bytes; %d positions × %d logits need %d", path, fi.Size(), rows, vocab, want)
	}
	return &File{Reader: NewReader(f, path, rows, vocab), f: f}, nil
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// Rows splits flat row-major logits into rows of vocab values, sharing
// flat's memory.
func Rows(flat []float32, vocab int) [][]float32 {
	out := make([][]float32, len(flat)/vocab)
	for i := range out {
		out[i] = flat[i*vocab : (i+1)*vocab : (i+1)*vocab]
	}
	return out
}
