package gpuengine

import (
	"fmt"

	"github.com/rwkvkit/rwkvkit/gpu"
)

// Activations of linear jobs (see wgsl/linear.wgsl).
const (
	actNone = iota
	actTanh
	actSigmoid
	actReluSq
	actSilu
	actAdd     // y += W·x
	actGateAdd // y += aux ⊙ W·x
)

// A job is one product y[t] = act(W·x[t]) of a linear op.
type job struct {
	m      string // matrix name
	x, y   region
	act    int
	aux    region // the gate of actGateAdd
	onRows bool   // over the pass's output rows instead of its tokens
	logits bool   // y is in the logits buffer

	// Optionally rows [r0, r0+rows) of a float16 matrix only, and the
	// input's columns from xcol in a wider region.
	r0, rows, xcol int
}

// matvecMax is the largest token count multiplied by the matrix-vector
// kernel; more go through the tiled matrix-matrix kernel.
const matvecMax = 16

// Tokens per workgroup of the matrix-vector kernel.
const mvTokens = 4

// mmTiles are the tiles of the matrix-matrix kernel, as threads along rows
// and along tokens (each thread sums 8 rows × 8 tokens): 128 × 128, and
// 64 × 64 for dispatches too small to fill the GPU with the large one.
var mmTiles = [...]struct{ tm, tn int }{{16, 16}, {8, 8}}

// mmFill is the fewest workgroups a dispatch takes the 128 × 128 tile with:
// about one per multiprocessor of a large GPU (an H200 has 132); with
// fewer, the 64 × 64 tile runs four times as many. On an H200 (prompts of
// 512-token passes): 7B's 4096-row products, 128 workgroups of 128 × 128,
// took 9% less time in 64 × 64 tiles than the earlier 128 × 128 kernel;
// 1.5B's 8192-row product and its attention products, 256 and 212
// workgroups, took 1.35–1.6× as long in tiles of 128 × 64.
var mmFill = 160

// mmSplit is the most parts a dispatch of one product over the tokens
// splits its columns into, each part summed by workgroups of their own
// into partial sums that a second dispatch adds up and finishes, while its
// tile gives it fewer than mmSplitWarps warps: the narrow products (4096
// rows × 512 tokens at 7B make 128 workgroups of 128 × 128; a batch of 256
// one-token sequences at 0.1B, 12 to 48) leave the multiprocessors half
// empty or worse. On an H200, up to 4 parts made 2048-token prompts 10–12%
// faster at 1.5B and 7B (7,776 → 8,583 and 1,661 → 1,864 tokens/s); for
// batches of 256, up to 8 parts of every product (not only those of at
// most C rows) took the GPU time of a step from 7.7 to 6.0 ms at 0.1B and
// from 40.3 to 35.4 ms at 1.5B (up to 16: 35.9 at 1.5B).
var mmSplit = 8

// mmSplitWarps is the warps two workgroups of 128 × 128 on each of an
// H200's 132 multiprocessors make.
const mmSplitWarps = 132 * 16

// mmScratch bounds the partial sums of a split dispatch, parts × tokens ×
// rows floats: mmParts stops doubling the parts once the warps reach
// mmSplitWarps, so the parts' warps stay below twice that, and a warp
// (32 threads of 64 sums each) sums 2048 values of a part.
const mmScratch = 2 * mmSplitWarps * 2048

// mmSplitJobs is the fewest workgroups of 64 × 64 with which a dispatch of
// several products over count tokens is not split like one of a single
// product (0: never split; a variable for the benchmarks to compare), where
// it is not a stream dispatch (below). On an H200, batches of 256 with every
// such dispatch split (their 128 × 128 tiles in up to 8 parts): 0.1B
// 31,749–31,964 → 35,414–35,730 tokens/s, whose attention products make
// about 164 workgroups of 64 × 64; 1.5B 6,410–6,585 → 6,066–6,181 (416 of
// them); 7B 1,720–1,726 → 1,729–1,737 (its 200 workgroups of 128 × 128, in
// which they run unsplit). Split below 264: 0.1B 31,173–31,256 →
// 34,178–35,180.
var mmSplitJobs = 264

// Stream dispatches (wgsl/matstream.wgsl): a dispatch over the tokens
// whose 128 × 128 tiles hold at least mmStreamMin slices of 8 columns for
// each of mmStreams workgroups shares them out evenly among that many:
// with mmStream 1, a dispatch of several products, or of one in at least
// mmStreamTiles tiles or (unless 0) with at least mmStreamOne slices for
// each workgroup; with 2, every one; with 0, none. mmStreams is two
// workgroups of 128 × 128 on each of an H200's 132 multiprocessors, what it
// holds at once (132 workgroups made a batch of 256 at 7B 7% slower, 396
// 3%). On an H200 (BENCHMARKS.md, run V), against tiles and parts, in
// the same call: 2048-token prompts 0.1B 91,117 → 102,983 tokens/s, 1.5B
// 9,944 → 10,325, 7B 2,053 → 2,117 (verify 1.5B 8,705 → 9,008, 7B 1,958 →
// 2,019); batches of 256, whose attention products are too few tiles to
// fill the GPU in any tile, 1.5B 5,721–5,988 → 6,554–6,798 and 7B 1,742 →
// 1,838–1,840. A batch's single products, whose columns split into parts
// already fill it, lost at 1.5B when streamed (6,778–6,897 → 6,506–6,516),
// so with mmStream 1 they keep their parts unless each workgroup would get
// at least mmStreamOne slices; a batch of 256 at 0.1B, at most 16 slices a
// workgroup, keeps them too. Every dispatch streamed made 7B's batch of
// 256 faster still (1,834–1,841 → 1,890–1,909; its single products have
// 496 slices a workgroup where 1.5B's have 124), and so does mmStreamOne
// 256, which leaves 1.5B's batch alone (run W, the same binary with 0 and
// with 256 in the same calls: 7B batch 1,826–1,838 → 1,884–1,891, 1.5B
// batch 6,340–6,904 → 6,742–7,070, 1.5B prompt 10,293–10,303 →
// 10,433–10,435, verify 8,982–9,012 → 9,093–9,095; 7B prompts unchanged).
// Variables for the benchmarks to compare.
var (
	mmStream      = 1
	mmStreams     = 264
	mmStreamTiles = 264
	mmStreamMin   = 32
	mmStreamOne   = 256
)

// jobOff is the index of a Job's off (wgsl/linear.wgsl) among its words.
const jobOff = 14

// gcd is the greatest common divisor of a and b.
func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// mmParts is the number of parts a dispatch of workgroups of tile v over
// columns that are multiples of cols is split into.
func mmParts(v, workgroups, cols int) int {
	warps := workgroups * mmTiles[v].tm * mmTiles[v].tn / 32
	n := 1
	for 2*n <= mmSplit && warps*n < mmSplitWarps && (cols/8)%(2*n) == 0 {
		n *= 2
	}
	return n
}

// mmTile picks the tile of a dispatch over count tokens whose jobs need
// rowTiles[v] row tiles with tile v: 128 × 128 when it gives the dispatch
// mmFill workgroups and half its tokens are used.
func (e *Engine) mmTile(rowTiles []int, count int) int {
	if e.tile > 0 {
		return e.tile - 1
	}
	if count > 64 && rowTiles[0]*ceilDiv(count, 8*mmTiles[0].tn) >= mmFill {
		return 0
	}
	return 1
}

// anyKind is the KIND of a matrix kernel whose jobs may be of any kind
// (every kernel's, unless compiled with another).
const anyKind = 4

// mvRows is the rows per workgroup of the matrix-vector kernel and mvLanes
// the most threads it gives a quad of rows (variables for the benchmarks
// to try others).
var mvRows, mvLanes = 32, 32

// oneTokenKernel is whether a step's quantized products take the kernel of
// one sum a row (matvec1.wgsl) rather than matvec (a variable for the
// benchmarks to compare).
var oneTokenKernel = true

// mmKindTiles is the set of tiles (bit v: mmTiles[v]) in which dispatches
// of float16 jobs alone get a matrix-matrix kernel of their own, as they
// have a matrix-vector kernel of their own (a variable for the benchmarks
// to compare). On an H200, in both tiles: 7B prompts 2,042 → 2,064
// tokens/s, batches of 256 3–4% faster at every shape, the 1.5B prompt
// 0.6% and the 0.1B prompt 5% slower (91,318–91,655 → 86,648–87,655).
var mmKindTiles = 3

// mmPairLanes is whether the matrix-matrix kernel places a warp's lanes so
// that each of its reads of workgroup memory has lanes reading in pairs
// (matmat.wgsl; a variable for the benchmarks to compare).
var mmPairLanes = true

// mmPairFetch is whether the 128 × 128 tile's threads fetch two slices at
// once, in pairs (matmat.wgsl's G; a variable for the benchmarks to
// compare).
var mmPairFetch = true

// linear adds the products of jobs, as few dispatches as their arenas and
// maxJobs allow.
func (e *Engine) linear(name string, jobs ...job) error {
	byArena, order := e.gpuJobs(jobs)
	for _, a := range order {
		js := byArena[a]
		for len(js) > 0 {
			n := min(len(js), maxJobs)
			if err := e.addProducts(name, a, js[:n]); err != nil {
				return err
			}
			js = js[n:]
		}
	}
	return nil
}

// A gpuJob is a job's product over the rows of one piece of its matrix: the
// kernels' Job (wgsl/linear.wgsl) and what choosing its dispatch needs.
type gpuJob struct {
	vals   []int
	rows   int
	onRows bool
	logits bool
	kind   int
}

// gpuJobs cuts jobs into the products of their matrices' pieces, by arena,
// the arenas in the order the jobs first use them.
func (e *Engine) gpuJobs(jobs []job) (byArena map[int][]gpuJob, order []int) {
	byArena = map[int][]gpuJob{}
	for _, j := range jobs {
		m := e.mat(j.m)
		if j.xcol+m.cols > j.x.width || (j.xcol == 0 && j.rows == 0 && j.x.width != m.cols) {
			panic(fmt.Sprintf("gpuengine: %s: input of %d for %d columns", j.m, j.x.width, m.cols))
		}
		rows := j.rows
		if rows == 0 {
			rows = m.rows - j.r0
		}
		if (j.r0 > 0 || rows < m.rows) && m.kind != kindF16 {
			panic("gpuengine: rows of a quantized matrix")
		}
		for _, p := range m.pieces {
			lo, hi := max(p.r0, j.r0), min(p.r0+p.n, j.r0+rows)
			if lo >= hi {
				continue
			}
			count, dst := 0, 0
			if j.onRows {
				count = 1
			}
			if j.logits {
				dst = 1
			}
			w := p.w + (lo-p.r0)*m.cols/2
			g := gpuJob{rows: hi - lo, onRows: j.onRows, logits: j.logits, kind: m.kind, vals: []int{w, p.p, m.kind, hi - lo, m.cols, j.x.off + j.xcol, j.x.width,
				j.y.off + lo - j.r0, j.y.width, j.act, j.aux.off + lo - j.r0, j.aux.width, count, dst, 0, 0}}
			if _, ok := byArena[p.arena]; !ok {
				order = append(order, p.arena)
			}
			byArena[p.arena] = append(byArena[p.arena], g)
		}
	}
	return byArena, order
}

// productKernels are the kernels of a dispatch of jobs of kind (kindF16 or
// anyKind) whose matrix-vector kernels have the geometries g and g1 (lanes
// a quad of rows, rows a workgroup): matvec, matvec1 (nil where the
// dispatch does not take it) and the matrix-matrix kernels, one a tile.
func (e *Engine) productKernels(kind int, g, g1 [2]int) (mv, mv1 *gpu.Kernel, mms []*gpu.Kernel, err error) {
	if mv, err = e.compile("matvec", map[string]int{"KIND": kind, "LANES": g[0], "MV_ROWS": g[1]}, "linear.wgsl"); err != nil {
		return nil, nil, nil, err
	}
	// A step's quantized products take the kernel of one sum a row
	// (matvec1.wgsl).
	if oneTokenKernel && kind != kindF16 {
		if mv1, err = e.compile("matvec1", map[string]int{"KIND": kind, "LANES": g1[0], "MV_ROWS": g1[1]},
			"linear.wgsl", "matvec1.wgsl"); err != nil {
			return nil, nil, nil, err
		}
	}
	for v, t := range mmTiles {
		mm, err := e.compile("matmat", mmConsts(t.tm, t.tn, mmKind(kind, v)), "linear.wgsl", "matmat.wgsl")
		if err != nil {
			return nil, nil, nil, err
		}
		mms = append(mms, mm)
	}
	return mv, mv1, mms, nil
}

// mmKind is the KIND a matrix-matrix kernel of tile v is compiled with for a
// dispatch of jobs of kind.
func mmKind(kind, v int) int {
	if mmKindTiles&(1<<v) == 0 {
		return anyKind
	}
	return kind
}

// addProducts adds the dispatch of up to maxJobs products of one arena (and
// the dispatch that adds up its parts, where its columns may be split).
func (e *Engine) addProducts(name string, a int, part []gpuJob) error {
	n := len(part)
	vals := []int{n, 0, 0, 0}
	mvTiles, mvTiles1, rowTiles := 0, 0, make([]int, len(mmTiles))
	onRows := part[0].onRows
	head := false // a job writes the logits
	// Float16 jobs alone take a matrix-vector kernel of their own, which
	// needs fewer registers than one of every kind: on an H200, 7B decode
	// went from 161 to 171 tokens/s. Kernels of Int8 or NF4 alone were
	// slower than the kernel of every kind (7B 194 → 190 and 175 → 166), so
	// those keep it; but Int8 jobs alone take it with twice the lanes a quad
	// of rows and half the rows a workgroup, and so do a step's products in
	// matvec1 where they include 4-bit ones (see mvGeometry).
	kind, int8s, fourBits := kindF16, true, false
	for _, g := range part {
		if g.kind != kindF16 {
			kind = anyKind
		}
		int8s = int8s && g.kind == kindInt8
		fourBits = fourBits || g.kind == kindNF4 || g.kind == kindSF4
	}
	lanes, mvr := e.mvGeometry(int8s)
	lanes1, mvr1 := e.mvGeometry(int8s || fourBits)
	rows, cols := 0, 0 // all the jobs' rows; the greatest common divisor of their columns
	slices := 0        // the slices of 8 columns of all their 128 × 128 tiles of a token tile
	for i, g := range part {
		vals = append(vals, g.vals...)
		vals[4+16*i+jobOff] = rows
		rows += g.rows
		cols = gcd(cols, g.vals[4])
		slices += ceilDiv(g.rows, 8*mmTiles[0].tm) * g.vals[4] / 8
		head = head || g.logits
		mvTiles += ceilDiv(g.rows, mvr)
		mvTiles1 += ceilDiv(g.rows, mvr1)
		for v, t := range mmTiles {
			rowTiles[v] += ceilDiv(g.rows, 8*t.tm)
		}
		if g.onRows != onRows {
			panic("gpuengine: jobs over tokens and rows in one dispatch")
		}
	}
	mv, mv1, mms, err := e.productKernels(kind, [2]int{lanes, mvr}, [2]int{lanes1, mvr1})
	if err != nil {
		return err
	}
	for range maxJobs - n {
		vals = append(vals, make([]int, 16)...)
	}
	vals[2] = rows
	// A split or a stream needs jobs over the tokens.
	split := mmSplit > 1 && !onRows && (n == 1 || mmSplitJobs > 0)
	streams := mmStream > 0 && !onRows
	var sum, fix *gpu.Kernel
	if split || streams {
		t := mmTiles[0]
		if sum, err = e.compile("matsum", mmConsts(t.tm, t.tn, anyKind), "linear.wgsl", "matmat.wgsl"); err != nil {
			return err
		}
		if fix, err = e.compile("matfix", mmConsts(t.tm, t.tn, anyKind), "linear.wgsl", "matmat.wgsl", "matstream.wgsl"); err != nil {
			return err
		}
		if e.scratch.width == 0 {
			e.scratch = e.tokens(ceilDiv(max(mmScratch, 2*mmStreams*(8*t.tm)*(8*t.tn)), e.tcap)) // two pieces a stream workgroup
		}
		vals[1] = e.scratch.off
		vals[3] = mmStreams
	}
	// tile returns the tile of a pass over count tokens, its token tiles
	// and the parts its columns are split into.
	tile := func(count int) (v, tiles, parts int) {
		v = e.mmTile(rowTiles, count)
		splits := split && (n == 1 || rowTiles[1]*ceilDiv(count, 8*mmTiles[1].tn) < mmSplitJobs)
		if splits && e.tile == 0 && count > 64 {
			v = 0 // the parts fill the GPU, in the tile that reads the least per product
		}
		tiles = ceilDiv(count, 8*mmTiles[v].tn)
		parts = 1
		if splits {
			parts = mmParts(v, rowTiles[v]*tiles, cols)
		}
		return v, tiles, parts
	}
	// stream is whether a pass over count tokens takes matstream, and
	// its tiles.
	stream := func(count int) (bool, int) {
		if !streams || e.tile == 2 || count <= 64 {
			return false, 0
		}
		tt := ceilDiv(count, 8*mmTiles[0].tn)
		tiles, units := rowTiles[0]*tt, tt*slices
		if n == 1 && mmStream == 1 && tiles < mmStreamTiles && (mmStreamOne == 0 || units < mmStreamOne*mmStreams) {
			return false, 0
		}
		return units >= mmStreamMin*mmStreams && units*mmStreams < 1<<32, tiles
	}
	kernels := append([]*gpu.Kernel{mv}, mms...)
	mv1At := len(kernels)
	if mv1 != nil {
		kernels = append(kernels, mv1)
	}
	streamAt := len(kernels)
	if streams {
		t := mmTiles[0]
		ms, err := e.compile("matstream", mmConsts(t.tm, t.tn, mmKind(kind, 0)), "linear.wgsl", "matmat.wgsl", "matstream.wgsl")
		if err != nil {
			return err
		}
		kernels = append(kernels, ms)
	}
	e.addOp(&op{name: name, kernels: kernels, params: params(vals...), arena: a, layer: -1, logits: true, head: head, rows: onRows,
		grid: func(s shape) (int, uint32, uint32) {
			count := s.T
			if onRows {
				count = s.R
			}
			if count == 0 {
				return 0, 0, 0
			}
			if count == 1 && mv1 != nil {
				return mv1At, uint32(mvTiles1), 1
			}
			if count <= matvecMax {
				return 0, uint32(mvTiles), uint32(ceilDiv(count, mvTokens))
			}
			if ok, _ := stream(count); ok {
				return streamAt, uint32(mmStreams), 1
			}
			v, tiles, parts := tile(count)
			return 1 + v, uint32(rowTiles[v]), uint32(tiles * parts)
		}})
	if split || streams {
		e.addOp(&op{name: name, kernels: []*gpu.Kernel{sum, fix}, params: params(vals...), arena: -1, layer: -1, logits: true, head: head,
			grid: func(s shape) (int, uint32, uint32) {
				if s.T <= matvecMax {
					return 0, 0, 0
				}
				if ok, tiles := stream(s.T); ok {
					t := mmTiles[0]
					return 1, uint32(tiles), uint32((8 * t.tm) * (8 * t.tn) / 4 / 256) // a quad of a tile a thread
				}
				if _, _, parts := tile(s.T); split && parts > 1 {
					return 0, uint32(ceilDiv(s.T*rows/4, 256)), uint32(parts)
				}
				return 0, 0, 0
			}})
	}
	return nil
}

// mmConsts are the constants of matmat.wgsl for a tile of tm × tn threads
// and jobs of kind.
func mmConsts(tm, tn, kind int) map[string]int {
	c := map[string]int{"TM": tm, "TN": tn, "KIND": kind, "PAIRS": 0, "G": 1}
	if mmPairLanes {
		c["PAIRS"] = 1
	}
	// Two slices a fetch where the tile has twice the threads of its rows
	// and of its tokens.
	if threads := tm * tn; mmPairFetch && threads == 2*8*tm && threads == 2*8*tn {
		c["G"] = 2
	}
	return c
}
