package gpuengine

import (
	"math"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
)

// v4Specs lists RWKV-4's per-layer tensors; the decay is stored as
// w = −exp(time_decay).
func v4Specs(i format.ModelInfo) []tensorSpec {
	s := vecs("att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "att.time_first")
	s = append(s, tensorSpec{name: "att.time_decay", xform: func(x float64) float64 { return -math.Exp(x) }})
	s = append(s, attSpecs(i, false)...)
	return append(s, ffnSpecs(i)...)
}

// buildV4 records RWKV-4: LayerNorm and the shifts x⊙m + prev⊙(1−m), the
// products (receptance through the sigmoid), the per-channel recurrence,
// the output added to x, then the channel mix.
func (e *Engine) buildV4() error {
	i := e.info
	C := i.Embed
	x := e.tokens(C)
	xk, xv, xr := e.tokens(C), e.tokens(C), e.tokens(C)
	r, k, v, y := e.tokens(C), e.tokens(C), e.tokens(C), e.tokens(C)
	fk := e.tokens(i.FFN)
	xo := e.rows(C)
	e.logits = e.logitRows()
	tm, err := e.compile("main", nil, "timemix4.wgsl")
	if err != nil {
		return err
	}
	if err := e.embed(x); err != nil {
		return err
	}
	for l := range i.Layers {
		p := layerName(l)
		if err := e.lnMix(l, x, p+"ln1", mixLerp, []string{p + "att.time_mix_k", p + "att.time_mix_v", p + "att.time_mix_r"},
			[]region{xk, xv, xr}, 0); err != nil {
			return err
		}
		if err := e.linear(p+"att.products",
			job{m: p + "att.receptance.weight", x: xr, y: r, act: actSigmoid},
			job{m: p + "att.key.weight", x: xk, y: k},
			job{m: p + "att.value.weight", x: xv, y: v}); err != nil {
			return err
		}
		for page := range e.states {
			slot0, n := e.pageRange(page)
			e.addOp(&op{name: p + "att.time_mix", kernels: []*gpu.Kernel{tm}, arena: e.vecArena(p + "att.time_first"), layer: l, page: page,
				params: params(r.off, k.off, v.off, y.off, e.slotStride, 2*C, e.vec(p+"att.time_decay"), e.vec(p+"att.time_first"), slot0, n, 0, 0),
				grid:   func(s shape) (int, uint32, uint32) { return 0, uint32(s.S), uint32(ceilDiv(C, 64)) }})
		}
		if err := e.outputAndChannelMix(l, x, y, mixLerp, xk, xr, r, fk); err != nil {
			return err
		}
	}
	return e.head(x, xo)
}
