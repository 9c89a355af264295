package gpuengine

import (
	"fmt"

	"github.com/rwkvkit/rwkvkit/format"
)

// specs lists the tensors the model's version needs, in placement order:
// ln0 and the embedding, then per layer its vectors and matrices, then
// ln_out and the head.
func (e *Engine) specs() []tensorSpec {
	i := e.info
	C, V := i.Embed, i.Vocab
	s := []tensorSpec{
		{name: "blocks.0.ln0.weight", n: C, group: -1},
		{name: "blocks.0.ln0.bias", n: C, group: -1},
		{name: "emb.weight", rows: V, cols: C, group: -1},
	}
	for l := range i.Layers {
		var layer []tensorSpec
		switch i.Version {
		case format.V4:
			layer = v4Specs(i)
		case format.V5_0, format.V5_1, format.V5_2:
			layer = v5Specs(i)
		case format.V6:
			layer = v6Specs(i)
		default:
			layer = v7Specs(i, l)
		}
		p := layerName(l)
		for _, v := range []string{"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"} {
			s = append(s, tensorSpec{name: p + v, n: C, group: l})
		}
		// Vectors first, so that a layer's vectors (and the matrices
		// placed with them) share an arena.
		for _, pass := range []bool{true, false} {
			for _, t := range layer {
				if (t.rows == 0 || t.withVecs) == pass {
					if t.rows == 0 && t.n == 0 {
						t.n = C
					}
					t.name = p + t.name
					t.group = l
					s = append(s, t)
				}
			}
		}
	}
	return append(s,
		tensorSpec{name: "ln_out.weight", n: C, group: i.Layers},
		tensorSpec{name: "ln_out.bias", n: C, group: i.Layers},
		tensorSpec{name: "head.weight", rows: V, cols: C, group: i.Layers})
}

// vecs names vectors of C values.
func vecs(names ...string) []tensorSpec {
	s := make([]tensorSpec, len(names))
	for i, n := range names {
		s[i] = tensorSpec{name: n}
	}
	return s
}

// build lays out the activations and records the program of the model's
// version.
func (e *Engine) build() error {
	e.scratch = region{}
	e.spanLen = e.spanLength()
	switch e.info.Version {
	case format.V4:
		return e.buildV4()
	case format.V5_0, format.V5_1, format.V5_2:
		return e.buildV5()
	case format.V6:
		return e.buildV6()
	default:
		return e.buildV7()
	}
}

// layerName is the prefix of layer l's tensors.
func layerName(l int) string { return fmt.Sprintf("blocks.%d.", l) }

// channelMix records the feed-forward half of v4–v6 on x:
// x += σ(Wr·xr) ⊙ Wv·relu(Wk·xk)², the shift as the version mixes
// (mixLerp for v4 and v5, mixAdd for v6). xk, xr, r, k are scratch.
func (e *Engine) channelMix(l int, x region, mode int, xk, xr, r, k region) error {
	p := layerName(l)
	if err := e.lnMix(l, x, p+"ln2", mode, []string{p + "ffn.time_mix_k", p + "ffn.time_mix_r"}, []region{xk, xr}, e.info.Embed); err != nil {
		return err
	}
	if err := e.linear(p+"ffn.key", job{m: p + "ffn.key.weight", x: xk, y: k, act: actReluSq},
		job{m: p + "ffn.receptance.weight", x: xr, y: r, act: actSigmoid}); err != nil {
		return err
	}
	return e.linear(p+"ffn.value", job{m: p + "ffn.value.weight", x: k, y: x, act: actGateAdd, aux: r})
}

// outputAndChannelMix records the end of a v4–v6 layer: x += Wo·y, then
// the channel mix (see channelMix).
func (e *Engine) outputAndChannelMix(l int, x, y region, mode int, xk, xr, r, k region) error {
	p := layerName(l)
	if err := e.linear(p+"att.output", job{m: p + "att.output.weight", x: y, y: x, act: actAdd}); err != nil {
		return err
	}
	return e.channelMix(l, x, mode, xk, xr, r, k)
}

// head records the logits of the output rows: ln_out, then the head
// product into the logits buffer.
func (e *Engine) head(x, xo region) error {
	if err := e.lnRows(x, "ln_out", xo, true); err != nil {
		return err
	}
	return e.linear("head", job{m: "head.weight", x: xo, y: e.logits, onRows: true, logits: true})
}

// ffnSpecs are the channel mix tensors of v4–v6.
func ffnSpecs(i format.ModelInfo) []tensorSpec {
	C, F := i.Embed, i.FFN
	return append(vecs("ffn.time_mix_k", "ffn.time_mix_r"),
		tensorSpec{name: "ffn.key.weight", rows: F, cols: C},
		tensorSpec{name: "ffn.receptance.weight", rows: C, cols: C},
		tensorSpec{name: "ffn.value.weight", rows: C, cols: F})
}

// attSpecs are the square time-mix matrices of v4–v6 (and the gate).
func attSpecs(i format.ModelInfo, gate bool) []tensorSpec {
	C := i.Embed
	names := []string{"att.receptance.weight", "att.key.weight", "att.value.weight", "att.output.weight"}
	if gate {
		names = append(names, "att.gate.weight")
	}
	s := make([]tensorSpec, len(names))
	for k, n := range names {
		s[k] = tensorSpec{name: n, rows: C, cols: C}
	}
	return s
}

// headTokens is a grid over segments × heads.
func headGrid(H int) func(s shape) (int, uint32, uint32) {
	return func(s shape) (int, uint32, uint32) { return 0, uint32(s.S), uint32(H) }
}
