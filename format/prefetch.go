package format

import (
	"io"
	"sync"
)

// Prefetch returns src with its tensors read ahead: opening tensor i also
// starts reading the tensors after it in the background, each whole, as
// long as those being read ahead total at most budget bytes. So a writer
// that takes the tensors in order overlaps the work behind each one
// (reading, dequantizing, merging, quantizing) with writing the one before,
// and memory grows by budget at most. A tensor larger than budget is never
// read ahead; it streams as it would without Prefetch.
func Prefetch(src *Source, budget int64) *Source {
	if budget <= 0 {
		return src
	}
	p := &prefetcher{tensors: src.Tensors, budget: budget,
		pending: map[int]chan prefetched{}, started: make([]bool, len(src.Tensors))}
	out := src.Derive()
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
	budget  int64

	mu      sync.Mutex
	pending map[int]chan prefetched
	ahead   int64  // bytes of the tensors in pending
	started []bool // read ahead or opened already: not read ahead again
}

func (p *prefetcher) open(i int) (io.ReadCloser, error) {
	p.mu.Lock()
	ch := p.pending[i]
	if ch != nil {
		delete(p.pending, i)
		p.ahead -= p.tensors[i].Size()
	}
	p.started[i] = true
	for next := i + 1; next < len(p.tensors); next++ {
		if p.started[next] {
			continue
		}
		t := p.tensors[next]
		if p.ahead+t.Size() > p.budget {
			break
		}
		p.started[next] = true
		p.ahead += t.Size()
		c := make(chan prefetched, 1)
		p.pending[next] = c
		go func() {
			b, err := t.Bytes()
			c <- prefetched{b, err}
		}()
	}
	p.mu.Unlock()
	if ch == nil {
		return p.tensors[i].Open()
	}
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return Computed(r.b), nil
}
