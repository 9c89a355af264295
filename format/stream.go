package format

import (
	"io"
	"sync"
	"sync/atomic"
)

// Stream returns src with its tensors read ahead of their reader, in src's
// order, into chunks of chunk bytes, at most n chunks ahead. So a writer
// that takes the tensors in order and copies each to its end overlaps
// reading them, and what their readers compute (a cast, say), with its
// writing, in memory n × chunk whatever the tensors' sizes. A tensor whose
// reader reads at any offset (an io.ReaderAt, as [Section] and the casts
// of such tensors are) has its chunks filled by workers goroutines at once,
// each on a core of its own; other tensors are read in order by one more.
// The stream's readers are io.WriterTo, so a copy hands the chunks
// themselves to the writer. A tensor opened out of that order, or while
// another is open, is read as it would be without Stream. Stop ends the
// goroutines and closes the readers they have open; call it once done with
// the result.
func Stream(src *Source, chunk, n, workers int) (out *Source, stop func()) {
	// No chunk larger than the largest tensor: a small model's stream
	// costs what its tensors do.
	var largest int64
	for _, t := range src.Tensors {
		largest = max(largest, t.Size())
	}
	chunk = int(max(min(int64(chunk), largest), 1))
	s := &streamer{tensors: src.Tensors, chunk: chunk, workers: max(workers, 1),
		free: make(chan *piece, n), full: make(chan *piece, n), jobs: make(chan *piece, n), done: make(chan struct{})}
	out = src.Derive()
	for i, t := range src.Tensors {
		c := *t
		c.open = func() (io.ReadCloser, error) { return s.open(i) }
		out.Tensors = append(out.Tensors, &c)
	}
	return out, s.stop
}

// A piece is the next bytes of the tensor being read, b, once ready has
// a token; last marks the tensor's last piece, and err one that ends it
// early. Pieces and their chunks go round between filling and reading.
type piece struct {
	b     []byte
	err   error
	last  bool
	ready chan struct{} // capacity 1

	// What a worker fills b with: the whole of tensor whole, or want bytes
	// at off of from and, for the last piece, one byte more at end (see
	// fillTensor); src's reader is closed once all its pieces are filled.
	whole *Tensor
	from  io.ReaderAt
	off   int64
	want  int
	end   int64
	src   *openTensor
}

// openTensor is a tensor reader that pieces still to be filled read from.
type openTensor struct {
	r     io.Closer
	count atomic.Int64 // pieces not yet filled
}

// filled counts n pieces of o as filled, closing its reader after the last.
func (o *openTensor) filled(n int64) {
	if o.count.Add(-n) == 0 {
		o.r.Close()
	}
}

type streamer struct {
	tensors []*Tensor
	chunk   int
	workers int
	free    chan *piece // pieces to fill
	full    chan *piece // pieces, in order
	jobs    chan *piece // pieces for the workers to fill
	done    chan struct{}
	running sync.WaitGroup // the goroutines

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
		// One byte more than a chunk: a tensor's last piece may hold the
		// byte that tells a reader yields more than its size.
		for range cap(s.free) {
			s.free <- &piece{b: make([]byte, s.chunk+1), ready: make(chan struct{}, 1)}
		}
		s.running.Add(1 + s.workers)
		go s.fill()
		for range s.workers {
			go s.work()
		}
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
		p, ok := s.take()
		if !ok {
			return
		}
		last := p.last
		s.free <- p
		if last {
			return
		}
	}
}

// take returns the next piece once it is filled; false once stopped.
func (s *streamer) take() (*piece, bool) {
	select {
	case p := <-s.full:
		select {
		case <-p.ready:
			return p, true
		case <-s.done:
		}
	case <-s.done:
	}
	return nil, false
}

// fill reads the tensors in order into pieces, or hands them to the
// workers, and then has them stop.
func (s *streamer) fill() {
	defer s.running.Done()
	defer close(s.jobs)
	for _, t := range s.tensors {
		if !s.fillTensor(t) {
			return
		}
	}
}

// fillTensor sends the pieces of t, reporting whether the stream goes on.
// A tensor is read to its end, or to one byte past its size, so that
// whoever checks that a tensor holds no more than its size can still tell.
// A tensor of one chunk is opened and read by a worker (opening may be
// work: a transpose, say); a larger one is opened here, and read here or,
// if it can be read at any offset, by the workers.
func (s *streamer) fillTensor(t *Tensor) bool {
	if t.Size() <= int64(s.chunk) {
		p, ok := s.piece()
		if !ok {
			return false
		}
		p.last, p.whole = true, t
		return s.send(p) && s.hand(p)
	}
	r, err := t.Open()
	if err != nil {
		p, ok := s.piece()
		return ok && s.sendFilled(p, 0, err, true)
	}
	if from, ok := r.(io.ReaderAt); ok {
		return s.fillAt(t, r, from)
	}
	defer r.Close()
	lr := io.LimitReader(r, t.Size()+1)
	for {
		p, ok := s.piece()
		if !ok {
			return false
		}
		n, err := io.ReadFull(lr, p.b[:s.chunk])
		end := err != nil
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
		}
		if !s.sendFilled(p, n, err, end) {
			return false
		}
		if end {
			return true
		}
	}
}

// fillAt hands the pieces of t, whose reader r reads at any offset, to the
// workers.
func (s *streamer) fillAt(t *Tensor, r io.Closer, from io.ReaderAt) bool {
	size, chunk := t.Size(), int64(s.chunk)
	pieces := max((size+chunk-1)/chunk, 1)
	o := &openTensor{r: r}
	o.count.Store(pieces)
	for k := range pieces {
		p, ok := s.piece()
		if ok {
			off := k * chunk
			p.from, p.off, p.want, p.end, p.src = from, off, int(min(chunk, size-off)), -1, o
			if k == pieces-1 {
				p.last, p.end = true, size
			}
		}
		if !ok || !s.send(p) || !s.hand(p) {
			o.filled(pieces - k) // those never handed out
			return false
		}
	}
	return true
}

// hand gives p to the workers; false once stopped.
func (s *streamer) hand(p *piece) bool {
	select {
	case s.jobs <- p:
		return true
	case <-s.done:
		return false
	}
}

// work fills the pieces handed to it until there are no more; once the
// stream is stopped it only counts them.
func (s *streamer) work() {
	defer s.running.Done()
	for p := range s.jobs {
		switch {
		case s.stopped():
		case p.whole != nil:
			p.fillWhole()
		default:
			p.fillAt()
		}
		src := p.src
		p.ready <- struct{}{}
		if src != nil {
			src.filled(1)
		}
	}
}

// fillWhole reads the piece's tensor, to one byte past its size.
func (p *piece) fillWhole() {
	r, err := p.whole.Open()
	if err != nil {
		p.b, p.err = p.b[:0], err
		return
	}
	defer r.Close()
	n, err := io.ReadFull(io.LimitReader(r, p.whole.Size()+1), p.b[:p.whole.Size()+1])
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	p.b, p.err = p.b[:n], err
}

// fillAt reads the piece's bytes, and for a last piece the byte past its
// tensor's end. A piece cut short has err set: its reader stops there.
func (p *piece) fillAt() {
	n, err := p.from.ReadAt(p.b[:p.want], p.off)
	switch {
	case n == p.want:
		err = nil
		if p.end >= 0 {
			m, _ := p.from.ReadAt(p.b[n:n+1], p.end)
			n += m
		}
	case err == nil || err == io.EOF:
		err = ErrShortData
	}
	p.b, p.err = p.b[:n], err
}

// piece returns a piece to fill, cleared; false once stopped.
func (s *streamer) piece() (*piece, bool) {
	select {
	case p := <-s.free:
		*p = piece{b: p.b[:cap(p.b)], ready: p.ready}
		return p, true
	case <-s.done:
		return nil, false
	}
}

// sendFilled sends p, filled here with n bytes, err and last.
func (s *streamer) sendFilled(p *piece, n int, err error, last bool) bool {
	p.b, p.err, p.last = p.b[:n], err, last
	p.ready <- struct{}{}
	return s.send(p)
}

func (s *streamer) send(p *piece) bool {
	select {
	case s.full <- p:
		return true
	case <-s.done:
		return false
	}
}

func (s *streamer) stop() {
	s.halt.Do(func() { close(s.done) })
	s.start.Do(func() {}) // never started: nothing to wait for
	s.running.Wait()
}

// streamReader reads one tensor's pieces.
type streamReader struct {
	s        *streamer
	tensor   int
	cur      *piece
	pos      int
	ended    bool  // the tensor's last piece has been taken
	err      error // the error of the last piece taken
	finished bool  // handed the stream on
}

// more makes sure the current piece has bytes left, taking the next one
// if not; at the tensor's end it returns io.EOF, or the error that ended
// it.
func (r *streamReader) more() error {
	for r.cur == nil || r.pos == len(r.cur.b) {
		if r.ended || r.err != nil {
			r.finish() // drops the pieces after one that failed
			if r.err != nil {
				return r.err
			}
			return io.EOF
		}
		if r.finished {
			return io.ErrClosedPipe
		}
		r.recycle()
		p, ok := r.s.take()
		if !ok {
			return io.ErrClosedPipe
		}
		r.cur, r.pos, r.ended, r.err = p, 0, p.last, p.err
	}
	return nil
}

func (r *streamReader) Read(p []byte) (int, error) {
	if err := r.more(); err != nil {
		return 0, err
	}
	n := copy(p, r.cur.b[r.pos:])
	r.pos += n
	return n, nil
}

// WriteTo writes the rest of the tensor to w a piece at a time, from the
// stream's own chunks.
func (r *streamReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := r.more(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
		n, err := w.Write(r.cur.b[r.pos:])
		r.pos += n
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// recycle gives back the current piece.
func (r *streamReader) recycle() {
	if r.cur != nil {
		r.s.free <- r.cur
		r.cur, r.pos = nil, 0
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
