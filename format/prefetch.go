package format

import (
	"bytes"
	"io"
	"sync"
)

// Prefetch returns src with its tensors read ahead: opening tensor i also
// starts reading tensors i+1 … i+depth in the background, each whole, so
// that a writer that takes the tensors in order overlaps the work behind
// each one (reading, dequantizing, merging, quantizing) with writing the one
// before. Memory: up to depth tensors besides the one being written.
func Prefetch(src *Source, depth int) *Source {
	if depth <= 0 {
		return src
	}
	p := &prefetcher{tensors: src.Tensors, depth: depth, pending: map[int]chan prefetched{}, started: make([]bool, len(src.Tensors))}
	out := &Source{Format: src.Format, Metadata: src.Metadata, Closer: src.Closer}
	for i, t := range src.Tensors {
		c := *t
		c.open = func() (io.ReadCloser, error) { return p.open(i) }
		out.Tensors = append(out.Tensors, &c)
	}
	return out
}

type prefetched struct {
	b   []byte
	err error
}

type prefetcher struct {
	tensors []*Tensor
	depth   int
	mu      sync.Mutex
	pending map[int]chan prefetched
	started []bool // read ahead or opened already: not read ahead again
}

func (p *prefetcher) open(i int) (io.ReadCloser, error) {
	p.mu.Lock()
	ch := p.pending[i]
	delete(p.pending, i)
	p.started[i] = true
	for next := i + 1; next <= i+p.depth && next < len(p.tensors); next++ {
		if p.started[next] {
			continue
		}
		p.started[next] = true
		c := make(chan prefetched, 1)
		p.pending[next] = c
		go func(t *Tensor) {
			b, err := t.Bytes()
			c <- prefetched{b, err}
		}(p.tensors[next])
	}
	p.mu.Unlock()
	if ch == nil {
		return p.tensors[i].Open()
	}
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return io.NopCloser(bytes.NewReader(r.b)), nil
}
