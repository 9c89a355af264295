package gpuengine

import (
	"fmt"

	"github.com/rwkvkit/rwkvkit/gpu"
)

// A region of the activation buffer: rows of width floats from off.
type region struct{ off, width int }

// at is the offset of row t.
func (r region) at(t int) int { return r.off + t*r.width }

// tokens reserves a region of one row per token of a pass; rows one row per
// output row.
func (e *Engine) tokens(width int) region { return e.reserveAct(width, e.tcap) }
func (e *Engine) rows(width int) region   { return e.reserveAct(width, e.rcap) }

// logitRows is the region of the logits buffer: a row of vocabulary values
// per output row.
func (e *Engine) logitRows() region { return region{width: e.info.Vocab} }

func (e *Engine) reserveAct(width, n int) region {
	r := region{off: e.actSize, width: width}
	e.actSize += int(alignUp(int64(width*n), 64))
	return r
}

func (e *Engine) vec(name string) int {
	v, ok := e.vecs[name]
	if !ok {
		panic("gpuengine: vector " + name + " was not placed")
	}
	return v.off
}

func (e *Engine) vecArena(name string) int { return e.vecs[name].arena }

func (e *Engine) mat(name string) *matrix {
	m, ok := e.mats[name]
	if !ok {
		panic("gpuengine: matrix " + name + " was not placed")
	}
	return m
}

// embed adds x[t] = LN_ln0(emb[token]): a gather per piece of the
// embedding, then the LayerNorm in place.
func (e *Engine) embed(x region) error {
	k, err := e.compile("main", nil, "embed.wgsl")
	if err != nil {
		return err
	}
	emb := e.mat("emb.weight")
	if emb.kind != kindF16 {
		return fmt.Errorf("gpuengine: the embedding must be float16")
	}
	for _, p := range emb.pieces {
		e.addOp(&op{name: "embed", kernels: []*gpu.Kernel{k}, params: params(p.w, p.r0, p.n, x.off), arena: p.arena, layer: -1,
			grid: func(s shape) (int, uint32, uint32) { x, y := grid2(s.T); return 0, x, y }})
	}
	return e.lnRows(x, "blocks.0.ln0", x, false)
}

// Token-shift modes of lnMix (see wgsl/lnmix.wgsl).
const (
	mixAdd  = 0 // xa + (prev − xa)·m
	mixLerp = 1 // xa·m + prev·(1 − m)
	mixDiff = 2 // xa and prev − xa
)

// lnMix adds the LayerNorm prefix (e.g. "blocks.3.ln1") of x and the token
// shift of layer l: out[f] from mixes[f] (mixDiff: out[0] = xa, out[1] =
// prev − xa). shift is the offset of the shift state in a slot.
func (e *Engine) lnMix(l int, x region, ln string, mode int, mixes []string, out []region, shift int) error {
	k, err := e.compile("main", nil, "ln.wgsl", "lnmix.wgsl")
	if err != nil {
		return err
	}
	if len(out) > 8 || len(mixes) > 8 {
		panic("gpuengine: too many mixes")
	}
	var mix, outs [8]int
	arena := e.vecArena(ln + ".weight")
	for i, m := range mixes {
		mix[i] = e.vec(m)
		if e.vecArena(m) != arena {
			panic("gpuengine: vectors of one layer in two arenas")
		}
	}
	for i, o := range out {
		outs[i] = o.off
	}
	groups := ceilDiv(e.info.Embed, e.lnThreads())
	for page := range e.states {
		slot0, n := e.pageRange(page)
		vals := []int{x.off, e.vec(ln + ".weight"), e.vec(ln + ".bias"), shift, e.slotStride, mode, len(mixes), slot0, n, groups, 0, 0}
		vals = append(vals, mix[:]...)
		vals = append(vals, outs[:]...)
		e.addOp(&op{name: ln, kernels: []*gpu.Kernel{k}, params: params(vals...), arena: arena, layer: l, page: page,
			grid: func(s shape) (int, uint32, uint32) { x, y := grid2(s.T * groups); return 0, x, y }})
	}
	return nil
}

// lnRows adds out[r] = LN(x[token of output row r]), or with onRows false
// out[t] = LN(x[t]) for every token.
func (e *Engine) lnRows(x region, ln string, out region, onRows bool) error {
	k, err := e.compile("main", nil, "ln.wgsl", "lnrows.wgsl")
	if err != nil {
		return err
	}
	tokens := 1
	if onRows {
		tokens = 0
	}
	e.addOp(&op{name: ln, kernels: []*gpu.Kernel{k}, params: params(x.off, e.vec(ln+".weight"), e.vec(ln+".bias"), out.off, tokens),
		arena: e.vecArena(ln + ".weight"), layer: -1, rows: onRows,
		grid: func(s shape) (int, uint32, uint32) {
			n := s.R
			if !onRows {
				n = s.T
			}
			x, y := grid2(n)
			return 0, x, y
		}})
	return nil
}
