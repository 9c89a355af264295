package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
)

// streamSource is a source of U8 tensors of the given sizes, each filled
// with a pattern of its own, counting opens and closes of their readers,
// which read at any offset too where the mode says so and they can.
type streamSource struct {
	src           *Source
	data          [][]byte
	opens, closes atomic.Int32
	mode          streamMode
}

// A streamMode is one way of streaming: tensors read in order or at any
// offset, by a number of workers.
type streamMode struct {
	readAt  bool
	workers int
}

var streamModes = []streamMode{{false, 1}, {true, 1}, {true, 3}}

// eachMode runs test in every streamMode.
func eachMode(t *testing.T, test func(t *testing.T, m streamMode)) {
	for _, m := range streamModes {
		t.Run(fmt.Sprintf("readAt=%v,workers=%d", m.readAt, m.workers), func(t *testing.T) { test(t, m) })
	}
}

func newStreamSource(t *testing.T, m streamMode, sizes ...int) *streamSource {
	t.Helper()
	s := &streamSource{src: &Source{}, mode: m}
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*31 + j*7)
		}
		s.data = append(s.data, b)
		s.add(t, fmt.Sprint("t", i), n, func() (io.Reader, error) { return bytes.NewReader(b), nil })
	}
	return s
}

func (s *streamSource) add(t *testing.T, name string, size int, open func() (io.Reader, error)) {
	t.Helper()
	tn, err := NewTensor(name, U8, []int64{int64(size)}, func() (io.ReadCloser, error) {
		r, err := open()
		if err != nil {
			return nil, err
		}
		s.opens.Add(1)
		rc := readCloser{r, func() { s.closes.Add(1) }}
		if ra, ok := r.(io.ReaderAt); ok && s.mode.readAt {
			return readAtCloser{rc, ra}, nil
		}
		return rc, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.src.Tensors = append(s.src.Tensors, tn)
}

type readCloser struct {
	io.Reader
	close func()
}

func (r readCloser) Close() error { r.close(); return nil }

type readAtCloser struct {
	readCloser
	io.ReaderAt
}

// readOdd reads r to its end in reads of changing sizes.
func readOdd(r io.Reader) ([]byte, error) {
	var out bytes.Buffer
	buf := make([]byte, 700)
	for i := 0; ; i++ {
		n, err := r.Read(buf[:1+i*37%len(buf)])
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

// Tensors taken in order come back exactly, empty ones and those of one
// chunk, less or more included, and each source tensor is opened and
// closed once.
func TestStreamInOrder(t *testing.T) { eachMode(t, testStreamInOrder) }

func testStreamInOrder(t *testing.T, m streamMode) {
	const chunk = 1000
	s := newStreamSource(t, m, 0, 10, chunk, chunk-1, chunk+1, 3*chunk, 5*chunk+17, 0, 1)
	out, stop := Stream(s.src, chunk, 3, m.workers)
	for i, tn := range out.Tensors {
		r, err := tn.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := readOdd(r)
		r.Close()
		if err != nil || !bytes.Equal(b, s.data[i]) {
			t.Errorf("tensor %d: %d bytes, %v; want its %d bytes", i, len(b), err, len(s.data[i]))
		}
	}
	stop()
	if o, c := s.opens.Load(), s.closes.Load(); o != int32(len(s.data)) || c != o {
		t.Errorf("source readers opened %d and closed %d times, want %d", o, c, len(s.data))
	}
}

// Tensors taken out of order, left unread, closed halfway or opened two at
// a time still read back exactly.
func TestStreamOutOfOrder(t *testing.T) { eachMode(t, testStreamOutOfOrder) }

func testStreamOutOfOrder(t *testing.T, m streamMode) {
	const chunk = 64
	s := newStreamSource(t, m, 100, 300, 50, 1000, 20, 640, 7)
	out, stop := Stream(s.src, chunk, 2, m.workers)
	defer stop()
	check := func(i int, r io.Reader) {
		t.Helper()
		b, err := readOdd(r)
		if err != nil || !bytes.Equal(b, s.data[i]) {
			t.Errorf("tensor %d: %d bytes, %v; want its %d bytes", i, len(b), err, len(s.data[i]))
		}
	}
	open := func(i int) io.ReadCloser {
		t.Helper()
		r, err := out.Tensors[i].Open()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// 2 first (0 and 1 skipped), then 0 (behind the stream).
	r := open(2)
	check(2, r)
	r.Close()
	r = open(0)
	check(0, r)
	r.Close()
	// 3 closed after a few bytes; 4 opened while 5 is open.
	r = open(3)
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r5 := open(4)
	r6 := open(5)
	check(5, r6)
	check(4, r5)
	r5.Close()
	r6.Close()
	r = open(6)
	check(6, r)
	r.Close()
	// Bytes, which reads exactly the size and closes.
	for _, i := range []int{1, 3} {
		b, err := out.Tensors[i].Bytes()
		if err != nil || !bytes.Equal(b, s.data[i]) {
			t.Errorf("tensor %d Bytes: %d bytes, %v", i, len(b), err)
		}
	}
}

// A tensor that cannot be opened, or whose reader fails, reports its own
// error where it happens; one whose reader yields more than its size
// yields a byte more, so that the excess can be told; the tensors after
// them read back.
func TestStreamErrors(t *testing.T) { eachMode(t, testStreamErrors) }

func testStreamErrors(t *testing.T, m streamMode) {
	const chunk = 100
	s := newStreamSource(t, m, 250)
	cannot, broken := errors.New("cannot open"), errors.New("disk error")
	s.add(t, "unopenable", 10, func() (io.Reader, error) { return nil, cannot })
	s.add(t, "broken", 500, func() (io.Reader, error) {
		return io.MultiReader(bytes.NewReader(make([]byte, 230)), errReader{broken}), nil
	})
	s.add(t, "long", 150, func() (io.Reader, error) { return bytes.NewReader(make([]byte, 400)), nil })
	s.add(t, "after", 0, func() (io.Reader, error) { return bytes.NewReader(nil), nil })
	// Read at offsets, the pieces past a failure or the data's end are
	// never seen: the error ends the tensor there.
	s.add(t, "broken at", 500, func() (io.Reader, error) { return &brokenAt{b: make([]byte, 500), at: 230, err: broken}, nil })
	s.add(t, "short", 250, func() (io.Reader, error) { return bytes.NewReader(make([]byte, 120)), nil })
	s.add(t, "last", 30, func() (io.Reader, error) { return bytes.NewReader(make([]byte, 30)), nil })
	out, stop := Stream(s.src, chunk, 2, m.workers)
	defer stop()
	read := func(i int) ([]byte, error) {
		r, err := out.Tensors[i].Open()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return readOdd(r)
	}
	if b, err := read(0); err != nil || !bytes.Equal(b, s.data[0]) {
		t.Errorf("tensor 0: %d bytes, %v", len(b), err)
	}
	if _, err := read(1); !errors.Is(err, cannot) {
		t.Errorf("unopenable tensor: %v, want %v", err, cannot)
	}
	if b, err := read(2); !errors.Is(err, broken) || len(b) != 230 {
		t.Errorf("broken tensor: %d bytes and %v, want 230 bytes and %v", len(b), err, broken)
	}
	if b, err := read(3); err != nil || len(b) != 151 {
		t.Errorf("long tensor: %d bytes and %v, want 151 bytes (its size and one more)", len(b), err)
	}
	if b, err := read(4); err != nil || len(b) != 0 {
		t.Errorf("tensor after: %d bytes and %v", len(b), err)
	}
	if b, err := read(5); !errors.Is(err, broken) || len(b) != 230 {
		t.Errorf("broken at 230: %d bytes and %v, want 230 bytes and %v", len(b), err, broken)
	}
	b, err := read(6)
	if m.readAt && (!errors.Is(err, ErrShortData) || len(b) != 120) {
		t.Errorf("short, read at offsets: %d bytes and %v, want 120 bytes and %v", len(b), err, ErrShortData)
	}
	if !m.readAt && (err != nil || len(b) != 120) {
		t.Errorf("short: %d bytes and %v, want the 120 there are", len(b), err)
	}
	if b, err := read(7); err != nil || len(b) != 30 {
		t.Errorf("last tensor: %d bytes and %v", len(b), err)
	}
}

// brokenAt reads b, failing with err from offset at on.
type brokenAt struct {
	b   []byte
	at  int
	err error
	pos int64
}

func (r *brokenAt) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	return n, err
}

func (r *brokenAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(r.at) {
		return 0, r.err
	}
	n := copy(p, r.b[off:r.at])
	if n < len(p) {
		return n, r.err
	}
	return n, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Stopping in the middle of a tensor ends the goroutine, closes the reader
// it had open and fails reads of the stream from then on; stopping a
// stream never read does nothing.
func TestStreamStop(t *testing.T) { eachMode(t, testStreamStop) }

func testStreamStop(t *testing.T, m streamMode) {
	s := newStreamSource(t, m, 10000, 10000)
	out, stop := Stream(s.src, 100, 2, m.workers)
	r, err := out.Tensors[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	stop()
	if o, c := s.opens.Load(), s.closes.Load(); o != c {
		t.Errorf("after stop: %d readers opened, %d closed", o, c)
	}
	if _, err := io.ReadAll(r); err == nil {
		t.Error("reading a stopped stream succeeded")
	}
	r.Close()
	stop()

	_, stop = Stream(newStreamSource(t, m, 10).src, 100, 2, m.workers)
	stop()
}
