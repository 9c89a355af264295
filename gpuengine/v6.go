package gpuengine

import (
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
)

// v6Specs lists RWKV-6's per-layer tensors (web-rwkv names: time_maa →
// time_mix; time_mix_w2 is [5, C, D], five matrices stacked).
func v6Specs(i format.ModelInfo) []tensorSpec {
	C, D, Dd := i.Embed, i.MixLoRA, i.DecayLoRA
	s := vecs("att.time_mix_x", "att.time_mix_w", "att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "att.time_mix_g",
		"att.time_decay", "att.ln_x.weight", "att.ln_x.bias")
	s = append(s, tensorSpec{name: "att.time_first", perHead: true},
		tensorSpec{name: "att.time_mix_w1", rows: 5 * D, cols: C},
		tensorSpec{name: "att.time_mix_w2", rows: 5 * C, cols: D, stack: 5},
		tensorSpec{name: "att.time_decay_w1", rows: Dd, cols: C},
		tensorSpec{name: "att.time_decay_w2", rows: C, cols: Dd})
	s = append(s, attSpecs(i, true)...)
	return append(s, ffnSpecs(i)...)
}

// buildV6 records RWKV-6: LayerNorm and the shift's difference, the mix
// LoRA (tanh(xxx·W1), then one product per mix), the data-dependent
// shifts, the products with the decay LoRA's first stage, its second, the
// time mix with the per-token decay, the output added to x, then the
// channel mix with x + (prev − x)⊙m shifts.
func (e *Engine) buildV6() error {
	i := e.info
	C, D := i.Embed, i.MixLoRA
	x := e.tokens(C)
	xa, sx, xxx := e.tokens(C), e.tokens(C), e.tokens(C)
	hid := e.tokens(5 * D)
	var m [5]region // w, k, v, r, g: the mix LoRA's outputs, then the shifted inputs
	for f := range m {
		m[f] = e.tokens(C)
	}
	r, k, v, g, y := e.tokens(C), e.tokens(C), e.tokens(C), e.tokens(C), e.tokens(C)
	dh, w := e.tokens(i.DecayLoRA), e.tokens(C)
	fk := e.tokens(i.FFN)
	xo := e.rows(C)
	e.logits = e.logitRows()
	tm, err := e.compile("main", map[string]int{"N": i.HeadSize}, "timemix5.wgsl", "headnorm.wgsl")
	if err != nil {
		return err
	}
	mix, err := e.compile("main", nil, "mix6.wgsl")
	if err != nil {
		return err
	}
	if err := e.embed(x); err != nil {
		return err
	}
	for l := range i.Layers {
		p := layerName(l)
		if err := e.lnMix(l, x, p+"ln1", mixDiff, []string{p + "att.time_mix_x"}, []region{xa, sx, xxx}, 0); err != nil {
			return err
		}
		if err := e.linear(p+"att.mix_lora1", job{m: p + "att.time_mix_w1", x: xxx, y: hid, act: actTanh}); err != nil {
			return err
		}
		var lora2 []job
		for f := range m {
			lora2 = append(lora2, job{m: p + "att.time_mix_w2", x: hid, xcol: f * D, y: m[f], r0: f * C, rows: C})
		}
		if err := e.linear(p+"att.mix_lora2", lora2...); err != nil {
			return err
		}
		var maa, outs [8]int
		for f, n := range []string{"w", "k", "v", "r", "g"} {
			maa[f] = e.vec(p + "att.time_mix_" + n)
			outs[f] = m[f].off
		}
		vals := append(append([]int{xa.off, sx.off, 0, 0}, maa[:]...), outs[:]...)
		e.addOp(&op{name: p + "att.mix", kernels: []*gpu.Kernel{mix}, params: params(vals...), arena: e.vecArena(p + "att.time_mix_w"), layer: -1,
			grid: func(s shape) (int, uint32, uint32) { x, y := grid2(s.T); return 0, x, y }})
		xw, xk, xv, xr, xg := m[0], m[1], m[2], m[3], m[4]
		if err := e.linear(p+"att.products",
			job{m: p + "att.receptance.weight", x: xr, y: r},
			job{m: p + "att.key.weight", x: xk, y: k},
			job{m: p + "att.value.weight", x: xv, y: v},
			job{m: p + "att.gate.weight", x: xg, y: g, act: actSilu},
			job{m: p + "att.time_decay_w1", x: xw, y: dh, act: actTanh}); err != nil {
			return err
		}
		if err := e.linear(p+"att.decay_lora", job{m: p + "att.time_decay_w2", x: dh, y: w}); err != nil {
			return err
		}
		e.timeMix5(tm, l, r, k, v, w, g, y, true, true)
		if err := e.outputAndChannelMix(l, x, y, mixAdd, xa, sx, r, fk); err != nil {
			return err
		}
	}
	return e.head(x, xo)
}
