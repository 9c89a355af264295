package convert

import (
	"io"

	"github.com/rwkvkit/rwkvkit/format"
)

// Reading a tensor (from the page cache or the disk) and casting it take
// about as long as writing it; pipelined, each chunk is read and cast by a
// goroutine while the writer writes the ones before it.
const (
	pipeChunk = 1 << 20 // bytes per chunk
	pipeDepth = 4       // chunks ready ahead of the writer
)

// pipelined returns src whose tensors, when opened, are read pipeDepth
// chunks ahead of their reader by a goroutine. Memory: pipeDepth+2 chunks
// per open tensor.
func pipelined(src *format.Source) (*format.Source, error) {
	out := src.Derive()
	for _, t := range src.Tensors {
		p, err := format.NewTensor(t.Name, t.DType, t.Shape, func() (io.ReadCloser, error) {
			r, err := t.Open()
			if err != nil {
				return nil, err
			}
			return newPipe(r), nil
		})
		if err != nil {
			return nil, err
		}
		out.Tensors = append(out.Tensors, p)
	}
	return out, nil
}

type chunk struct {
	b   []byte
	err error // after b: io.EOF at the end
}

// A pipe reads r ahead in a goroutine.
type pipe struct {
	r     io.ReadCloser
	ready chan chunk
	free  chan []byte
	done  chan struct{}
	cur   chunk
	off   int
}

func newPipe(r io.ReadCloser) *pipe {
	p := &pipe{r: r, ready: make(chan chunk, pipeDepth), free: make(chan []byte, pipeDepth+2), done: make(chan struct{})}
	for range pipeDepth + 2 {
		p.free <- make([]byte, pipeChunk)
	}
	go p.fill()
	return p
}

// fill reads chunks until the end, an error, or Close.
func (p *pipe) fill() {
	defer close(p.ready)
	for {
		var b []byte
		select {
		case b = <-p.free:
		case <-p.done:
			return
		}
		n, err := io.ReadFull(p.r, b)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case p.ready <- chunk{b[:n], err}:
		case <-p.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (p *pipe) Read(b []byte) (int, error) {
	for p.off == len(p.cur.b) {
		if p.cur.err != nil {
			return 0, p.cur.err
		}
		if p.cur.b != nil {
			p.free <- p.cur.b[:cap(p.cur.b)]
		}
		c, ok := <-p.ready
		if !ok {
			return 0, io.ErrClosedPipe
		}
		p.cur, p.off = c, 0
	}
	n := copy(b, p.cur.b[p.off:])
	p.off += n
	return n, nil
}

// Close stops the goroutine, waits for it, and closes the tensor's reader.
func (p *pipe) Close() error {
	close(p.done)
	for range p.ready { // the goroutine ends, and with it every use of r
	}
	return p.r.Close()
}
