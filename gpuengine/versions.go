package gpuengine

import "fmt"

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
		var vecs []string
		var mats []tensorSpec
		switch i.Version {
		default:
			vecs, mats = v7Specs(i, l)
		}
		p := fmt.Sprintf("blocks.%d.", l)
		for _, v := range append([]string{"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"}, vecs...) {
			s = append(s, tensorSpec{name: p + v, n: C, group: l})
		}
		for _, m := range mats {
			m.name = p + m.name
			m.group = l
			s = append(s, m)
		}
	}
	return append(s,
		tensorSpec{name: "ln_out.weight", n: C, group: i.Layers},
		tensorSpec{name: "ln_out.bias", n: C, group: i.Layers},
		tensorSpec{name: "head.weight", rows: V, cols: C, group: i.Layers})
}

// build lays out the activations and records the program of the model's
// version.
func (e *Engine) build() error {
	switch e.info.Version {
	default:
		return e.buildV7()
	}
}

// layerName is the prefix of layer l's tensors.
func layerName(l int) string { return fmt.Sprintf("blocks.%d.", l) }
