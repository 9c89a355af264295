package gpuengine

import (
	"math"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
)

// v5Specs lists the per-layer tensors of v5.0, v5.1 and v5.2: decay and
// bonus per head or per channel (repeated per channel at load), the decay
// stored as the factor exp(−exp(decay)); v5.0 keeps its bonus as a log.
func v5Specs(i format.ModelInfo) []tensorSpec {
	gated := i.Version != format.V5_0
	s := vecs("att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "att.ln_x.weight", "att.ln_x.bias")
	if gated {
		s = append(s, tensorSpec{name: "att.time_mix_g"})
	}
	first := tensorSpec{name: "att.time_first", perHead: true}
	if !gated {
		first.xform = math.Exp
	}
	s = append(s, first, tensorSpec{name: "att.time_decay", perHead: true, xform: func(x float64) float64 { return math.Exp(-math.Exp(x)) }})
	s = append(s, attSpecs(i, gated)...)
	return append(s, ffnSpecs(i)...)
}

// buildV5 records the v5 family: LayerNorm and the shifts x⊙m + prev⊙(1−m),
// the products (gate through SiLU), the time mix, the output added to x,
// then the channel mix.
func (e *Engine) buildV5() error {
	i := e.info
	C := i.Embed
	gated := i.Version != format.V5_0
	x := e.tokens(C)
	xk, xv, xr, xg := e.tokens(C), e.tokens(C), e.tokens(C), e.tokens(C)
	r, k, v, g, y := e.tokens(C), e.tokens(C), e.tokens(C), e.tokens(C), e.tokens(C)
	fk := e.tokens(i.FFN)
	xo := e.rows(C)
	e.logits = e.logitRows()
	tm, err := e.compile("main", map[string]int{"N": i.HeadSize}, "timemix5.wgsl", "headnorm.wgsl")
	if err != nil {
		return err
	}
	if err := e.embed(x); err != nil {
		return err
	}
	for l := range i.Layers {
		p := layerName(l)
		mixes := []string{p + "att.time_mix_k", p + "att.time_mix_v", p + "att.time_mix_r"}
		outs := []region{xk, xv, xr}
		jobs := []job{
			{m: p + "att.receptance.weight", x: xr, y: r},
			{m: p + "att.key.weight", x: xk, y: k},
			{m: p + "att.value.weight", x: xv, y: v},
		}
		if gated {
			mixes, outs = append(mixes, p+"att.time_mix_g"), append(outs, xg)
			jobs = append(jobs, job{m: p + "att.gate.weight", x: xg, y: g, act: actSilu})
		}
		if err := e.lnMix(l, x, p+"ln1", mixLerp, mixes, outs, 0); err != nil {
			return err
		}
		if err := e.linear(p+"att.products", jobs...); err != nil {
			return err
		}
		e.timeMix5(tm, l, r, k, v, region{}, g, y, gated, false)
		if err := e.outputAndChannelMix(l, x, y, mixLerp, xk, xr, r, fk); err != nil {
			return err
		}
	}
	return e.head(x, xo)
}

// timeMix5 adds the v5/v6 time-mix kernel of layer l, one op per page of
// states; w is v6's decay LoRA output.
func (e *Engine) timeMix5(tm *gpu.Kernel, l int, r, k, v, w, g, y region, gated, v6 bool) {
	p := layerName(l)
	b := func(ok bool) int {
		if ok {
			return 1
		}
		return 0
	}
	for page := range e.states {
		slot0, n := e.pageRange(page)
		e.addOp(&op{name: p + "att.time_mix", kernels: []*gpu.Kernel{tm}, arena: e.vecArena(p + "att.time_first"), layer: l, page: page,
			params: params(r.off, k.off, v.off, w.off, g.off, y.off, b(gated), b(v6), e.slotStride, 2*e.info.Embed,
				e.vec(p+"att.time_decay"), e.vec(p+"att.time_first"), e.vec(p+"att.ln_x.weight"), e.vec(p+"att.ln_x.bias"), slot0, n),
			grid: headGrid(e.info.Heads)})
	}
}
