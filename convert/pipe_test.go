package convert

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
	"time"
)

// A pipe gives the bytes of its reader, in order, across chunk
// boundaries, then the reader's error; closed early, it stops its
// goroutine and closes the reader.
func TestPipe(t *testing.T) {
	data := make([]byte, 3*pipeChunk+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, pipeChunk, len(data)} {
		p := newPipe(io.NopCloser(iotest.HalfReader(bytes.NewReader(data[:n]))))
		got, err := io.ReadAll(iotest.OneByteReader(p))
		if err != nil || !bytes.Equal(got, data[:n]) {
			t.Errorf("%d bytes: read %d, %v", n, len(got), err)
		}
		p.Close()
	}
	broken := errors.New("broken")
	p := newPipe(io.NopCloser(io.MultiReader(bytes.NewReader(data[:pipeChunk+5]), iotest.ErrReader(broken))))
	if got, err := io.ReadAll(p); !errors.Is(err, broken) || len(got) != pipeChunk+5 {
		t.Errorf("error: %d bytes, %v", len(got), err)
	}
	p.Close()
	before := runtime.NumGoroutine()
	closed := false
	for range 20 {
		p := newPipe(closer{bytes.NewReader(data), &closed})
		var one [10]byte
		p.Read(one[:])
		p.Close()
		if !closed {
			t.Fatal("Close did not close the reader")
		}
	}
	time.Sleep(10 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines before, %d after closing 20 pipes early", before, after)
	}
}

type closer struct {
	io.Reader
	closed *bool
}

func (c closer) Close() error { *c.closed = true; return nil }
