package format

import (
	"io"
	"sync"
)

// Stream returns src with its tensors read ahead of their reader by one
// goroutine, in src's order, into chunks of chunk bytes, at most n chunks
// ahead. So a writer that takes the tensors in order and copies each to
// its end overlaps reading them, and what their readers compute (a cast,
// say), with its writing, on another core, in memory n × chunk whatever
// the tensors' sizes. A tensor opened out of that order, or while another
// is open, is read as it would be without Stream. Stop ends the goroutine
// and closes the reader it has open; call it once done with the result.
func Stream(src *Source, chunk, n int) (out *Source, stop func()) {
	s := &streamer{tensors: src.Tensors, chunk: chunk, free: make(chan []byte, n), full: make(chan piece, n),
		done: make(chan struct{}), exit: make(chan struct{})}
	out = src.Derive()
	for i, t := range src.Tensors {
		c := *t
		c.open = func() (io.ReadCloser, error) { return s.open(i) }
		out.Tensors = append(out.Tensors, &c)
	}
	return out, s.stop
}

// A piece is the next bytes of the tensor being read; last marks the
// tensor's end, or err.
type piece struct {
	b    []byte
	err  error
	last bool
}

type streamer struct {
	tensors []*Tensor
	chunk   int
	free    chan []byte // chunks to fill
	full    chan piece  // pieces, in order
	done    chan struct{}
	exit    chan struct{} // closed when the goroutine has returned

	start, halt sync.Once
	mu          sync.Mutex
	next        int  // the tensor whose pieces come next on full
	busy        bool // a reader takes pieces from full
}

func (s *streamer) open(i int) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy || i < s.next || s.stopped() {
		return s.tensors[i].Open()
	}
	s.start.Do(func() {
		for range cap(s.free) {
			s.free <- make([]byte, s.chunk)
		}
		go s.fill()
	})
	for ; s.next < i; s.next++ {
		s.skip()
	}
	s.busy = true
	return &streamReader{s: s, tensor: i}, nil
}

func (s *streamer) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// skip drops the pieces of tensor s.next up to its last.
func (s *streamer) skip() {
	for {
		select {
		case p := <-s.full:
			s.free <- p.b[:cap(p.b)]
			if p.last {
				return
			}
		case <-s.done:
			return
		}
	}
}

// fill reads the tensors in order into pieces. A tensor is read to its
// end, or to one byte past its size, so that whoever checks that a tensor
// holds no more than its size can still tell.
func (s *streamer) fill() {
	defer close(s.exit)
	for _, t := range s.tensors {
		if !s.fillTensor(t) {
			return
		}
	}
}

// fillTensor sends the pieces of t, reporting whether the stream goes on.
func (s *streamer) fillTensor(t *Tensor) bool {
	r, err := t.Open()
	if err != nil {
		b, ok := s.take()
		return ok && s.send(piece{b: b[:0], err: err, last: true})
	}
	defer r.Close()
	lr := io.LimitReader(r, t.Size()+1)
	for {
		b, ok := s.take()
		if !ok {
			return false
		}
		n, err := io.ReadFull(lr, b)
		end := err != nil
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
		}
		p := piece{b: b[:n], err: err, last: end}
		if !s.send(p) {
			return false
		}
		if p.last {
			return true
		}
	}
}

func (s *streamer) take() ([]byte, bool) {
	select {
	case b := <-s.free:
		return b, true
	case <-s.done:
		return nil, false
	}
}

func (s *streamer) send(p piece) bool {
	select {
	case s.full <- p:
		return true
	case <-s.done:
		return false
	}
}

func (s *streamer) stop() {
	s.halt.Do(func() { close(s.done) })
	s.start.Do(func() { close(s.exit) }) // never started: nothing to wait for
	<-s.exit
}

// streamReader reads one tensor's pieces.
type streamReader struct {
	s        *streamer
	tensor   int
	cur      piece
	pos      int
	ended    bool // the tensor's last piece has been taken
	finished bool // handed the stream on
}

func (r *streamReader) Read(p []byte) (int, error) {
	for r.pos == len(r.cur.b) {
		if r.ended {
			r.finish()
			if r.cur.err != nil {
				return 0, r.cur.err
			}
			return 0, io.EOF
		}
		if r.finished {
			return 0, io.ErrClosedPipe
		}
		r.recycle()
		select {
		case r.cur = <-r.s.full:
		case <-r.s.done:
			return 0, io.ErrClosedPipe
		}
		r.pos, r.ended = 0, r.cur.last
	}
	n := copy(p, r.cur.b[r.pos:])
	r.pos += n
	return n, nil
}

// recycle returns the current piece's chunk.
func (r *streamReader) recycle() {
	if r.cur.b != nil {
		r.s.free <- r.cur.b[:cap(r.cur.b)]
		r.cur.b, r.pos = nil, 0
	}
}

// finish drops the rest of the tensor's pieces and hands the stream on,
// once.
func (r *streamReader) finish() {
	if r.finished {
		return
	}
	r.finished = true
	r.recycle()
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if !r.ended {
		r.s.skip()
	}
	r.s.next, r.s.busy = r.tensor+1, false
}

func (r *streamReader) Close() error {
	r.finish()
	return nil
}
