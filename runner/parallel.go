package runner

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A product is out = W·x for T inputs: out[t·ldo+r] = Σ_c W[r][c]·x[t·ldx+c].
type product struct {
	m   matrix
	x   []float32
	ldx int
	out []float32
	ldo int
	T   int
}

// Work sizes, in multiply-adds: below serialWork a product set runs on the
// calling goroutine (waking workers costs more than it saves); a unit of
// matrix-vector work covers about vecUnitWork; a matrix-matrix tile holds
// about tileBytes of float32 weights, which stay in cache while every token
// passes over them.
const (
	serialWork  = 1 << 15
	vecUnitWork = 1 << 15
	tileBytes   = 96 << 10
)

func (p *product) unitRows() int {
	rows, cols := p.m.dims()
	var u int
	if p.T == 1 {
		u = vecUnitWork / max(cols, 1)
	} else {
		u = tileBytes / 4 / max(cols, 1)
	}
	u = max(8, u&^3)
	return min(u, rows)
}

func (p *product) compute(r0, r1 int, sc *scratch) {
	_, cols := p.m.dims()
	if p.T == 1 {
		p.m.mulVec(p.out[r0:r1], p.x[:cols], r0, sc)
		return
	}
	w := p.m.tile(r0, r1, sc)
	gemmF32(p.out[r0:], p.ldo, w, cols, r1-r0, p.x, p.ldx, p.T, cols)
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// workers is the number of goroutines products and recurrences use.
func workers() int { return runtime.GOMAXPROCS(0) }

// run computes the products, spreading their blocks of rows over the workers.
func run(ps ...product) {
	var work int64
	units := 0
	for i := range ps {
		rows, cols := ps[i].m.dims()
		work += int64(rows) * int64(cols) * int64(ps[i].T)
		units += (rows + ps[i].unitRows() - 1) / ps[i].unitRows()
	}
	n := min(workers(), units)
	if work < serialWork || n <= 1 {
		sc := scratchPool.Get().(*scratch)
		for i := range ps {
			rows, _ := ps[i].m.dims()
			u := ps[i].unitRows()
			for r := 0; r < rows; r += u {
				ps[i].compute(r, min(r+u, rows), sc)
			}
		}
		scratchPool.Put(sc)
		return
	}
	var next atomic.Int64
	worker := func() {
		sc := scratchPool.Get().(*scratch)
		defer scratchPool.Put(sc)
		p, base := 0, 0 // the product holding unit i starts at unit base
		for {
			i := int(next.Add(1) - 1)
			if i >= units {
				return
			}
			for {
				rows, _ := ps[p].m.dims()
				u := ps[p].unitRows()
				cnt := (rows + u - 1) / u
				if i < base+cnt {
					r := (i - base) * u
					ps[p].compute(r, min(r+u, rows), sc)
					break
				}
				base += cnt
				p++
			}
		}
	}
	parallel(n, worker)
}

// parallel runs f on n goroutines (the caller's among them) and waits.
func parallel(n int, f func()) {
	var wg sync.WaitGroup
	for range n - 1 {
		wg.Go(f)
	}
	f()
	wg.Wait()
}

// forEach calls f(i) for i in [0, n) on up to workers() goroutines; it is
// for independent pieces of similar size, like the heads of a recurrence.
func forEach(n int, f func(i int)) {
	w := min(workers(), n)
	if w <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	parallel(w, func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			f(i)
		}
	})
}
