package synth

import (
	"fmt"

	"github.com/rwkvkit/rwkvkit/format"
)

// RWKV5 returns a synthetic model of the v5 family (v, one of format.V5_0,
// V5_1 and V5_2; cfg's low-rank sizes are not used) in RWKV-LM (.pth)
// naming: v5.0 and v5.1 have one decay and bonus per head (time_decay and
// time_first of [H]), v5.2 one per channel (time_decay and time_faaaa of
// [H, N]); v5.1 and v5.2 have a gate. The FFN is 4×Embed. Floating-point
// tensors are of type dt; the same seed gives the same bytes.
func RWKV5(cfg Config, v format.Version, dt format.DType, seed uint64) (*format.Source, error) {
	if v != format.V5_0 && v != format.V5_1 && v != format.V5_2 {
		return nil, fmt.Errorf("synth: RWKV %s is not of the v5 family", v)
	}
	C, V, N := int64(cfg.Embed), int64(cfg.Vocab), int64(cfg.HeadSize)
	if N <= 0 || C%N != 0 {
		return nil, fmt.Errorf("synth: head size %d does not divide the embedding %d", N, C)
	}
	H := C / N
	vec := []int64{1, 1, C}
	perHead, bonus := []int64{H}, "time_first"
	if v == format.V5_2 {
		perHead, bonus = []int64{H, N}, "time_faaaa"
	}
	gated := v != format.V5_0
	specs := []spec{{"emb.weight", []int64{V, C}, fillMatrix}}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("blocks.%d.", l)
		specs = append(specs, layerNorms(l, C)...)
		specs = append(specs,
			spec{p + "att.time_mix_k", vec, fillMix},
			spec{p + "att.time_mix_v", vec, fillMix},
			spec{p + "att.time_mix_r", vec, fillMix})
		if gated {
			specs = append(specs, spec{p + "att.time_mix_g", vec, fillMix})
		}
		specs = append(specs,
			spec{p + "att.time_decay", perHead, fillDecay},
			spec{p + "att." + bonus, perHead, fillSmall},
			spec{p + "att.receptance.weight", []int64{C, C}, fillMatrix},
			spec{p + "att.key.weight", []int64{C, C}, fillMatrix},
			spec{p + "att.value.weight", []int64{C, C}, fillMatrix},
			spec{p + "att.output.weight", []int64{C, C}, fillMatrix})
		if gated {
			specs = append(specs, spec{p + "att.gate.weight", []int64{C, C}, fillMatrix})
		}
		specs = append(specs,
			spec{p + "att.ln_x.weight", []int64{C}, fillOne},
			spec{p + "att.ln_x.bias", []int64{C}, fillZero},
			spec{p + "ffn.time_mix_k", vec, fillMix},
			spec{p + "ffn.time_mix_r", vec, fillMix},
			spec{p + "ffn.key.weight", []int64{4 * C, C}, fillMatrix},
			spec{p + "ffn.receptance.weight", []int64{C, C}, fillMatrix},
			spec{p + "ffn.value.weight", []int64{C, 4 * C}, fillMatrix})
	}
	return source(append(specs, head(C, V)...), dt, seed)
}
