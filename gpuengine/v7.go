package gpuengine

import (
	"fmt"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
)

// v7Specs lists RWKV-7's per-layer tensors (web-rwkv names; docs/rwkv-math.md).
func v7Specs(i format.ModelInfo, l int) []tensorSpec {
	C, F := i.Embed, i.FFN
	s := vecs("att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g",
		"att.w0", "att.a0", "att.k_k", "att.k_a", "att.r_k", "att.ln_x.weight", "att.ln_x.bias", "ffn.x_k")
	if l > 0 { // layer 0 takes its values as they are
		s = append(s, tensorSpec{name: "att.v0"})
	}
	// Matrices in the order of their dispatches, so that the products of
	// one dispatch tend to share an arena.
	s = append(s, []tensorSpec{
		{name: "att.receptance.weight", rows: C, cols: C},
		{name: "att.key.weight", rows: C, cols: C},
		{name: "att.value.weight", rows: C, cols: C},
		{name: "att.w1", rows: i.DecayLoRA, cols: C},
		{name: "att.a1", rows: i.ALoRA, cols: C},
		{name: "att.g1", rows: i.GLoRA, cols: C},
	}...)
	if l > 0 {
		s = append(s, tensorSpec{name: "att.v1", rows: i.VLoRA, cols: C})
	}
	s = append(s, []tensorSpec{
		{name: "att.w2", rows: C, cols: i.DecayLoRA},
		{name: "att.a2", rows: C, cols: i.ALoRA},
		{name: "att.g2", rows: C, cols: i.GLoRA},
	}...)
	if l > 0 {
		s = append(s, tensorSpec{name: "att.v2", rows: C, cols: i.VLoRA})
	}
	return append(s, []tensorSpec{
		{name: "att.output.weight", rows: C, cols: C},
		{name: "ffn.key.weight", rows: F, cols: C},
		{name: "ffn.value.weight", rows: C, cols: F},
	}...)
}

// longSegments reports whether a pass's segments are long enough, on
// average, for the three-kernel time mix (see buildV7).
func longSegments(s shape) bool { return s.T >= 4*s.S }

// buildV7 records RWKV-7: per layer, LayerNorm and the six token shifts, the
// products of the shifted inputs (receptance, key, value and the first
// LoRA stages, one dispatch), the second LoRA stages (one dispatch), the
// time mix, the output product added to x, then the channel mix (LayerNorm
// and shift, key with relu², value added to x).
func (e *Engine) buildV7() error {
	i := e.info
	C, H, N := i.Embed, i.Heads, i.HeadSize
	x := e.tokens(C)
	var mix [6]region
	for f := range mix {
		mix[f] = e.tokens(C)
	}
	r, k, v, w, a, g, vg := e.tokens(C), e.tokens(C), e.tokens(C), e.tokens(C), e.tokens(C), e.tokens(C), e.tokens(C)
	hw, ha, hg, hv := e.tokens(i.DecayLoRA), e.tokens(i.ALoRA), e.tokens(i.GLoRA), e.tokens(max(i.VLoRA, 4))
	vf, y, kb := e.tokens(C), e.tokens(C), e.tokens(C)
	fx, fk := e.tokens(C), e.tokens(i.FFN)
	xo := e.rows(C)
	e.logits = e.logitRows()

	hs := map[string]int{"N": N}
	tm, err := e.compile("main", hs, "timemix7.wgsl")
	if err != nil {
		return err
	}
	prep, err := e.compile("main", hs, "prep7.wgsl")
	if err != nil {
		return err
	}
	if N%16 != 0 || N > 64 {
		return fmt.Errorf("gpuengine: head size %d: the RWKV-7 recurrence needs a multiple of 16 up to 64", N)
	}
	recur, err := e.compile("main", hs, "recur7.wgsl")
	if err != nil {
		return err
	}
	post, err := e.compile("main", hs, "post7.wgsl")
	if err != nil {
		return err
	}
	// Short segments (steps, batches of steps) take one kernel that does the
	// whole time mix; long ones (prompts) three, so that only the recurrence
	// runs token by token.
	short := func(grid func(s shape) (int, uint32, uint32)) func(s shape) (int, uint32, uint32) {
		return func(s shape) (int, uint32, uint32) {
			if longSegments(s) {
				return 0, 0, 0
			}
			return grid(s)
		}
	}
	long := func(grid func(s shape) (int, uint32, uint32)) func(s shape) (int, uint32, uint32) {
		return func(s shape) (int, uint32, uint32) {
			if !longSegments(s) {
				return 0, 0, 0
			}
			return grid(s)
		}
	}
	tokensHeads := func(s shape) (int, uint32, uint32) { return 0, uint32(s.T), uint32(H) }
	if err := e.embed(x); err != nil {
		return err
	}
	for l := range i.Layers {
		p := layerName(l)
		mixes := []string{p + "att.x_r", p + "att.x_w", p + "att.x_k", p + "att.x_v", p + "att.x_a", p + "att.x_g"}
		if err := e.lnMix(l, x, p+"ln1", mixAdd, mixes, mix[:], 0); err != nil {
			return err
		}
		xr, xw, xk, xv, xa, xg := mix[0], mix[1], mix[2], mix[3], mix[4], mix[5]
		first := []job{
			{m: p + "att.receptance.weight", x: xr, y: r},
			{m: p + "att.key.weight", x: xk, y: k},
			{m: p + "att.value.weight", x: xv, y: v},
			{m: p + "att.w1", x: xw, y: hw, act: actTanh},
			{m: p + "att.a1", x: xa, y: ha},
			{m: p + "att.g1", x: xg, y: hg, act: actSigmoid},
		}
		second := []job{
			{m: p + "att.w2", x: hw, y: w},
			{m: p + "att.a2", x: ha, y: a},
			{m: p + "att.g2", x: hg, y: g},
		}
		if l > 0 {
			first = append(first, job{m: p + "att.v1", x: xv, y: hv})
			second = append(second, job{m: p + "att.v2", x: hv, y: vg})
		}
		if err := e.linear(p+"att.products", first...); err != nil {
			return err
		}
		if err := e.linear(p+"att.lora", second...); err != nil {
			return err
		}
		isFirst, v0 := 1, 0
		if l > 0 {
			isFirst, v0 = 0, e.vec(p+"att.v0")
		}
		vecs := e.vecArena(p + "att.w0")
		for page := range e.states {
			slot0, n := e.pageRange(page)
			e.addOp(&op{name: p + "att.time_mix", kernels: []*gpu.Kernel{tm}, arena: vecs, layer: l, page: page,
				params: params(r.off, w.off, k.off, v.off, a.off, g.off, vg.off, vf.off, y.off, isFirst, e.slotStride, 2*C,
					e.vec(p+"att.w0"), e.vec(p+"att.a0"), v0, e.vec(p+"att.k_k"), e.vec(p+"att.k_a"), e.vec(p+"att.r_k"),
					e.vec(p+"att.ln_x.weight"), e.vec(p+"att.ln_x.bias"), slot0, n),
				grid: short(headGrid(H))})
		}
		e.addOp(&op{name: p + "att.prep", kernels: []*gpu.Kernel{prep}, arena: vecs, layer: -1,
			params: params(w.off, a.off, k.off, v.off, vg.off, vf.off, kb.off, isFirst,
				e.vec(p+"att.w0"), e.vec(p+"att.a0"), v0, e.vec(p+"att.k_k"), e.vec(p+"att.k_a"), 0, 0, 0),
			grid: long(tokensHeads)})
		for page := range e.states {
			slot0, n := e.pageRange(page)
			e.addOp(&op{name: p + "att.recurrence", kernels: []*gpu.Kernel{recur}, arena: -1, layer: l, page: page,
				params: params(r.off, w.off, k.off, v.off, a.off, kb.off, y.off, e.slotStride, 2*C, slot0, n, 0),
				grid:   long(headGrid(H))})
		}
		e.addOp(&op{name: p + "att.post", kernels: []*gpu.Kernel{post}, arena: vecs, layer: -1,
			params: params(r.off, k.off, v.off, g.off, y.off, e.vec(p+"att.r_k"), e.vec(p+"att.ln_x.weight"), e.vec(p+"att.ln_x.bias")),
			grid:   long(tokensHeads)})
		if err := e.linear(p+"att.output", job{m: p + "att.output.weight", x: y, y: x, act: actAdd}); err != nil {
			return err
		}
		if err := e.lnMix(l, x, p+"ln2", mixAdd, []string{p + "ffn.x_k"}, []region{fx}, C); err != nil {
			return err
		}
		if err := e.linear(p+"ffn.key", job{m: p + "ffn.key.weight", x: fx, y: fk, act: actReluSq}); err != nil {
			return err
		}
		if err := e.linear(p+"ffn.value", job{m: p + "ffn.value.weight", x: fk, y: x, act: actAdd}); err != nil {
			return err
		}
	}
	return e.head(x, xo)
}
