package format

import "fmt"

// RWKV-7: the generalised delta rule, with low-rank decay (w1, w2),
// learning rate (a1, a2), gate (g1, g2) and, from layer 1, value residual
// (v1, v2) matrices, and r_k per head. Its memory is indexed
// [value][key].
var gen7 = generation{
	versions: []Version{V7},
	detect: func(d *detector) Version {
		if d.att("r_k") != nil {
			return V7
		}
		return ""
	},
	heads: func(d *detector) *Tensor { return d.att("r_k") },
	lowRank: func(d *detector) {
		info := &d.info
		info.DecayLoRA = d.lowRank(d.att("w1"), 1)
		info.ALoRA = d.lowRank(d.att("a1"), 1)
		info.GLoRA = d.lowRank(d.att("g1"), 1)
		for l := 1; l < info.Layers; l++ {
			if v := d.get(fmt.Sprintf("blocks.%d.att.v1", l)); v != nil {
				info.VLoRA = d.lowRank(v, 1)
				break
			}
		}
		if d.src.Format == "pth" && info.DecayLoRA == info.Embed {
			// w1 is square: only the file kind tells the layouts apart.
			info.Layout = LayoutRWKVLM
		}
	},
}
