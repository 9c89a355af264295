package runner

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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
// calling goroutine (waking workers costs more than it saves). A
// matrix-vector product is cut into vecUnits pieces per worker, no smaller
// than minVecUnit: few and long, because each piece is a run of memory the
// prefetcher must first lock onto, and a few per worker, so that a worker
// slowed by something else on its core leaves its share to the others.
// A matrix-matrix tile holds about tileBytes of float32 weights per pass of
// kBlock columns; the larger the tile, the more weight rows each input row
// loaded into L1 serves (measured on AMD Zen 5: 8 rows 107, 32 rows 117,
// 128 rows 127 GMAC/s per core at k = 768), up to a share per worker.
const (
	serialWork = 1 << 15
	vecUnits   = 4
	minVecUnit = 1 << 14
	tileBytes  = 384 << 10
	tileUnits  = 2
)

func (p *product) unitRows() int {
	rows, cols := p.m.dims()
	var u int
	if p.T == 1 {
		u = max((rows+vecUnits*workers()-1)/(vecUnits*workers()), minVecUnit/max(cols, 1))
	} else {
		u = min(tileBytes/4/max(min(cols, kBlockGo), 1), (rows+tileUnits*workers()-1)/(tileUnits*workers()))
		u = max(u, 8)
	}
	return min((u+3)&^3, rows)
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

// parallel runs f on n goroutines (the caller's among them) and waits. f
// must share its work out itself (every copy pulls pieces from a counter),
// so that copies that start late or find nothing left cost nothing.
func parallel(n int, f func()) {
	if n <= 1 {
		f()
		return
	}
	if p := sharedPool(); p != nil && p.mu.TryLock() {
		p.do(f)
		p.mu.Unlock()
		return
	}
	// The pool is busy with another caller's work (or GOMAXPROCS changed):
	// fresh goroutines.
	var wg sync.WaitGroup
	for range n - 1 {
		wg.Go(f)
	}
	f()
	wg.Wait()
}

// A pool keeps GOMAXPROCS−1 helper goroutines that spin for a short while
// after each job before they park. Token-by-token generation issues a few
// products every hundred microseconds, each too short to wait for a parked
// goroutine to be woken and scheduled (a fresh goroutine often arrives after
// the caller has done all the work), so spinning helpers are what lets a
// matrix-vector product use more than one core.
type pool struct {
	mu      sync.Mutex // one job at a time
	helpers int
	job     func()
	seq     atomic.Uint64 // job generation; written after job
	pending atomic.Int64  // helpers still in the current job
	parked  []atomic.Bool
	wake    []chan struct{}
}

// spinTime is how long an idle helper spins before it parks.
const spinTime = 200 * time.Microsecond

var (
	poolOnce sync.Once
	thePool  *pool
)

// sharedPool returns the process-wide pool, or nil when GOMAXPROCS has
// changed since it was made or is 1.
func sharedPool() *pool {
	poolOnce.Do(func() {
		n := runtime.GOMAXPROCS(0) - 1
		if n < 1 {
			return
		}
		thePool = &pool{helpers: n, parked: make([]atomic.Bool, n), wake: make([]chan struct{}, n)}
		for i := range n {
			thePool.wake[i] = make(chan struct{}, 1)
			go thePool.helper(i)
		}
	})
	if thePool == nil || thePool.helpers != runtime.GOMAXPROCS(0)-1 {
		return nil
	}
	return thePool
}

// do runs f on the caller and on every helper, and waits for all of them.
// The caller holds p.mu.
func (p *pool) do(f func()) {
	p.job = f
	p.pending.Store(int64(p.helpers))
	p.seq.Add(1)
	for i := range p.parked {
		if p.parked[i].Load() {
			select {
			case p.wake[i] <- struct{}{}:
			default:
			}
		}
	}
	f()
	for spins := 0; p.pending.Load() != 0; spins++ {
		if spins%256 == 255 {
			runtime.Gosched()
		}
	}
	p.job = nil
}

func (p *pool) helper(i int) {
	var last uint64
	for {
		start := time.Now()
		for spins := 0; p.seq.Load() == last; spins++ {
			if spins%1024 == 1023 && time.Since(start) > spinTime {
				// Park. The store before the second look at seq pairs with
				// do's store of seq before its look at parked: one of the two
				// sees the other, so a job is never missed.
				p.parked[i].Store(true)
				if p.seq.Load() == last {
					<-p.wake[i]
				}
				p.parked[i].Store(false)
				start = time.Now()
			}
		}
		last = p.seq.Load()
		p.job()
		p.pending.Add(-1)
	}
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
