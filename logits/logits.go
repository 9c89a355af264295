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
	if err := format.CheckExtension(path, ""); err != nil {
		return err
	}
	return atomicfile.WriteFile(ctx, path, atomicfile.Options{Force: force}, func(w io.Writer) error { return Write(w, rows) })
}

// ReadFile reads a logits file of rows × vocab values and returns its rows.
// A file of any other size is an error naming it, and nothing is read.
func ReadFile(path string, rows, vocab int) ([][]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	want := 4 * int64(rows) * int64(vocab)
	if fi.Size() != want {
		return nil, fmt.Errorf("%s: %d bytes; %d positions × %d logits need %d", path, fi.Size(), rows, vocab, want)
	}
	flat := make([]float32, rows*vocab)
	buf := make([]byte, 4*min(len(flat), bufValues))
	for done := 0; done < len(flat); {
		n := min(len(flat)-done, bufValues)
		if _, err := io.ReadFull(f, buf[:4*n]); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for i := range n {
			flat[done+i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
		done += n
	}
	return Rows(flat, vocab), nil
}

// Rows splits flat row-major logits into rows of vocab values, sharing
// flat's memory.
func Rows(flat []float32, vocab int) [][]float32 {
	out := make([][]float32, len(flat)/vocab)
	for i := range out {
		out[i] = flat[i*vocab : (i+1)*vocab : (i+1)*vocab]
	}
	return out
}
