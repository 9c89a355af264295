package gpuengine

import (
	"slices"

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
	// The second LoRA stages go with the vectors: the time mix of short
	// segments, which binds those, multiplies them itself.
	s = append(s, []tensorSpec{
		{name: "att.w2", rows: C, cols: i.DecayLoRA, withVecs: true},
		{name: "att.a2", rows: C, cols: i.ALoRA, withVecs: true},
		{name: "att.g2", rows: C, cols: i.GLoRA, withVecs: true},
	}...)
	if l > 0 {
		s = append(s, tensorSpec{name: "att.v2", rows: C, cols: i.VLoRA, withVecs: true})
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
// LoRA stages, one dispatch), the second LoRA stages (one dispatch, which
// the time mix of short segments does itself where their matrices share
// the arena of the layer's vectors), the time mix, the output product added
// to x, then the channel mix (LayerNorm and shift, key with relu², value
// added to x).
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
	// The time mix of short segments, as it is (variant 0) and making the
	// second LoRA stages itself (variant 1, where the device has room).
	tm, err := e.compile("main", map[string]int{"N": N, "LORA": 0, "LL": 1, "DW": 0, "DA": 0, "DG": 0, "DV": 0, "LORA4": N},
		"state7.wgsl", "timemix7.wgsl", "headnorm.wgsl")
	if err != nil {
		return err
	}
	tmLoRA := tm
	lanes, fuse := e.timeMixLoRA()
	if fuse {
		tmLoRA, err = e.compile("main", map[string]int{"N": N, "LORA": 1, "LL": lanes,
			"DW": i.DecayLoRA, "DA": i.ALoRA, "DG": i.GLoRA, "DV": i.VLoRA, "LORA4": timeMixLoRA4(i, lanes)},
			"state7.wgsl", "timemix7.wgsl", "headnorm.wgsl")
		if err != nil {
			return err
		}
	}
	prep, err := e.compile("main", hs, "prep7.wgsl")
	if err != nil {
		return err
	}
	recur, err := e.compile("main", map[string]int{"N": N, "MODE": 0}, "state7.wgsl", "recur7.wgsl")
	if err != nil {
		return err
	}
	var spanParts, carry *gpu.Kernel
	var spans region
	if e.spanLen > 0 {
		if spanParts, err = e.compile("main", map[string]int{"N": N, "MODE": 1}, "state7.wgsl", "recur7.wgsl"); err != nil {
			return err
		}
		if carry, err = e.compile("main", hs, "state7.wgsl", "carry7.wgsl"); err != nil {
			return err
		}
		spans = e.reserveAct(2*N*C, spanSlots(e.tcap, e.spanLen))
	}
	post, err := e.compile("main", hs, "post7.wgsl", "headnorm.wgsl")
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
	// The spans' first two kernels have work only where a segment has
	// more than one.
	severalSpans := func(grid func(s shape) (int, uint32, uint32)) func(s shape) (int, uint32, uint32) {
		return func(s shape) (int, uint32, uint32) {
			if s.K == s.S {
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
		vecs := e.vecArena(p + "att.w0")
		w2, inTM := e.loraMatrices(vecs, second)
		// Whether the time mix of a pass of shape s makes the second
		// stages: it reads their matrices once per segment.
		loraInTM := func(s shape) bool { return inTM && fuse && !longSegments(s) && s.S <= timeMixLoRAMax }
		loraOps := len(e.prog)
		if err := e.linear(p+"att.lora", second...); err != nil {
			return err
		}
		for _, o := range e.prog[loraOps:] {
			grid := o.grid
			o.grid = func(s shape) (int, uint32, uint32) {
				if loraInTM(s) {
					return 0, 0, 0
				}
				return grid(s)
			}
		}
		isFirst, v0 := 1, 0
		if l > 0 {
			isFirst, v0 = 0, e.vec(p+"att.v0")
		}
		for page := range e.states {
			slot0, n := e.pageRange(page)
			e.addOp(&op{name: p + "att.time_mix", kernels: []*gpu.Kernel{tm, tmLoRA}, arena: vecs, layer: l, page: page,
				params: params(r.off, w.off, k.off, v.off, a.off, g.off, vg.off, vf.off, y.off, isFirst, e.slotStride, 2*C,
					e.vec(p+"att.w0"), e.vec(p+"att.a0"), v0, e.vec(p+"att.k_k"), e.vec(p+"att.k_a"), e.vec(p+"att.r_k"),
					e.vec(p+"att.ln_x.weight"), e.vec(p+"att.ln_x.bias"), slot0, n,
					hw.off, ha.off, hg.off, hv.off, w2[0], w2[1], w2[2], w2[3]),
				grid: short(func(s shape) (int, uint32, uint32) {
					if loraInTM(s) {
						return 1, uint32(s.S), uint32(H)
					}
					return 0, uint32(s.S), uint32(H)
				})})
		}
		e.addOp(&op{name: p + "att.prep", kernels: []*gpu.Kernel{prep}, arena: vecs, layer: -1,
			params: params(w.off, a.off, k.off, v.off, vg.off, vf.off, kb.off, isFirst,
				e.vec(p+"att.w0"), e.vec(p+"att.a0"), v0, e.vec(p+"att.k_k"), e.vec(p+"att.k_a"), 0, 0, 0),
			grid: long(tokensHeads)})
		for page := range e.states {
			slot0, n := e.pageRange(page)
			recurParams := params(r.off, w.off, k.off, v.off, a.off, kb.off, y.off, e.slotStride, 2*C, slot0, n, spans.off)
			if e.spanLen > 0 {
				e.addOp(&op{name: p + "att.spans", kernels: []*gpu.Kernel{spanParts}, arena: -1, layer: l, page: page,
					params: recurParams,
					grid:   long(severalSpans(func(s shape) (int, uint32, uint32) { return 0, uint32(s.K), uint32(2 * H) }))})
				e.addOp(&op{name: p + "att.carry", kernels: []*gpu.Kernel{carry}, arena: -1, layer: l, page: page,
					params: params(spans.off, e.slotStride, 2*C, slot0, n, 0, 0, 0),
					grid:   long(severalSpans(func(s shape) (int, uint32, uint32) { return 0, uint32(s.S), uint32(H * N / carryRows) }))})
			}
			e.addOp(&op{name: p + "att.recurrence", kernels: []*gpu.Kernel{recur}, arena: -1, layer: l, page: page,
				params: recurParams,
				grid:   long(func(s shape) (int, uint32, uint32) { return 0, uint32(s.K), uint32(H) })})
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

// Spans of RWKV-7's recurrence (see wgsl/recur7.wgsl): a pass of long
// segments whose segments × heads are at most spanGroups cuts each segment
// into spans of spanTokens tokens, which run side by side; its scratch has
// spanSlots slots. A variable for the benchmarks to try others.
//
// On an H200, spans of 128 tokens made a 2048-token prompt of 0.1B (12
// heads) 31% faster and of 1.5B (32 heads) 3.4% faster; at 7B (64 heads)
// spans of 64 lost 1% and of 128 or 256 gained nothing: there the work the
// spans add (U and P, three times the recurrence's arithmetic) outweighs
// the parallelism they bring.
//
// spanTokens is the shortest span: a pass whose spans × heads would exceed
// spanWork takes spans twice as long until they do not. On an H200, a
// 2048-token prompt of 1.5B (32 heads) in spans of 256 (256 workgroups)
// ran at 10,295–10,303 tokens/s against 10,235–10,237 in spans of 128
// (512), and its verify at 8,997–9,021 against 8,955–8,975 (spans of 512:
// 8,976–8,989); 0.1B's (12 heads) lost 2–6% in spans of 256 or 64, whose
// 384 workgroups the rule does not take either.
var (
	spanTokens = 128
	spanGroups = 32
	spanWork   = 256
)

// carryRows is the rows of S a workgroup of carry7.wgsl chains (its RB).
const carryRows = 16

// spanSlots is the scratch slots a pass of tcap tokens may need for spans
// of L tokens: a segment of n > L tokens has ⌈n/L⌉ < 2n/L spans.
func spanSlots(tcap, L int) int { return 2 * ceilDiv(tcap, L) }

// spanLength returns the tokens of a span for this device, or 0 where it
// lacks the workgroup memory of carry7.wgsl (a span's P and a block of
// rows of S).
func (e *Engine) spanLength() int {
	n := e.info.HeadSize
	if e.info.Version != format.V7 || spanTokens <= 0 || 4*(n*n+carryRows*n) > int(deviceLimits(e.d).MaxComputeWorkgroupStorageSize) {
		return 0
	}
	return spanTokens
}

// planSpans writes the spans of the pass planned (a pass of long segments)
// into the pass description and sets sh.K: each segment one span, or, where
// segments × heads are at most spanGroups, spans of e.spanLen tokens or a
// power of two times as many, the shortest whose spans × heads are at most
// spanWork.
func (e *Engine) planSpans(sh *shape) {
	base, table := 4+2*e.tcap, 4+7*e.tcap
	L := e.spanLen
	if L > 0 && sh.S*e.info.Heads <= spanGroups {
		spans := func(L int) (k int) {
			for s := range sh.S {
				k += ceilDiv(e.word(base+4*s+2), L)
			}
			return k
		}
		k := spans(L)
		for k*e.info.Heads > spanWork && k > sh.S {
			L *= 2
			k = spans(L)
		}
		if 2*k > e.tcap { // more than the table holds
			L = 0
		}
	} else {
		L = 0
	}
	if L == 0 {
		L = e.tcap
	}
	k, slot := 0, 0
	for s := range sh.S {
		start, n := e.word(base+4*s+1), e.word(base+4*s+2)
		e.putWord(base+4*s+3, k)
		for t := start; t < start+n; t += L {
			scratch := noScratch
			if n > L {
				scratch, slot = slot, slot+1
			}
			e.putWord(table+4*k, s)
			e.putWord(table+4*k+1, t)
			e.putWord(table+4*k+2, min(t+L, start+n))
			e.putWord(table+4*k+3, scratch)
			k++
		}
	}
	sh.K = k
}

// noScratch marks the one span of a segment (NO_SCRATCH in common.wgsl).
const noScratch = 0xffffffff

// timeMixLoRAMax is the most segments a pass may have for its time mix to
// make the second LoRA stages: each segment's workgroups read the
// matrices again (from cache), where the separate products read them once
// per 4 tokens or per tile. A variable for the benchmarks to try others.
var timeMixLoRAMax = 8

// timeMixLanes is the threads per channel of the RWKV-7 time mix for the
// second LoRA stages (1, 2 or 4; fewer where the workgroup would exceed
// the device's limits). A variable for the benchmarks to try others.
var timeMixLanes = 4

// timeMixLoRA returns the threads per channel of the time mix of short
// segments and whether the device gives it the workgroup memory to make
// the second LoRA stages itself (checkKernels asks only for what it needs
// without them).
func (e *Engine) timeMixLoRA() (lanes int, ok bool) {
	i, l := e.info, deviceLimits(e.d)
	fits := func(lanes int) bool {
		shared := 4*8*i.HeadSize + 16*timeMixLoRA4(i, lanes)
		return i.HeadSize*lanes <= int(min(l.MaxComputeInvocationsPerWorkgroup, l.MaxComputeWorkgroupSizeX)) &&
			shared <= int(l.MaxComputeWorkgroupStorageSize)
	}
	// A power of two up to 4 divides the words of 8 values of a row (D is
	// a multiple of 32).
	lanes = 4
	for lanes > 1 && (lanes > timeMixLanes || !fits(lanes)) {
		lanes /= 2
	}
	return lanes, fits(lanes)
}

// timeMixLoRA4 is the vec4s of workgroup memory the time mix takes for the
// second LoRA stages (see wgsl/timemix7.wgsl): a partial product for each
// thread and a token's first stages.
func timeMixLoRA4(i format.ModelInfo, lanes int) int {
	return i.HeadSize*lanes + (i.DecayLoRA+i.ALoRA+i.GLoRA+i.VLoRA)/4
}

// loraMatrices returns the arena word offsets of the matrices of the
// second LoRA stages (w2, a2, g2 and v2 past layer 0), and whether the
// time mix can multiply them: float16, each in one piece in arena, the
// arena of the layer's vectors, which the time mix binds.
func (e *Engine) loraMatrices(arena int, second []job) ([4]int, bool) {
	var offs [4]int
	for k, j := range second {
		m := e.mat(j.m)
		if m.kind != kindF16 || len(m.pieces) != 1 || m.pieces[0].arena != arena {
			return offs, false
		}
		offs[k] = m.pieces[0].w
	}
	return offs, true
}

// deviceLayer returns a layer of a state as the device holds it: for
// RWKV-7 each head's S by columns (wgsl/state7.wgsl), a copy of layer; for
// the other versions layer itself.
func (e *Engine) deviceLayer(layer []float32) []float32 {
	if e.info.Version != format.V7 {
		return layer
	}
	layer = slices.Clone(layer)
	transposeHeads(layer[2*e.info.Embed:], e.info.HeadSize)
	return layer
}

// hostLayer turns a layer read from the device into the host's layout, in
// place.
func (e *Engine) hostLayer(layer []float32) {
	if e.info.Version == format.V7 {
		transposeHeads(layer[2*e.info.Embed:], e.info.HeadSize)
	}
}

// transposeHeads transposes each n×n matrix of mem in place.
func transposeHeads(mem []float32, n int) {
	for h := 0; h+n*n <= len(mem); h += n * n {
		m := mem[h : h+n*n]
		for i := range n {
			for j := i + 1; j < n; j++ {
				m[i*n+j], m[j*n+i] = m[j*n+i], m[i*n+j]
			}
		}
	}
}
