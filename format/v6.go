package format

// RWKV-6: the v5.2 memory with a data-dependent token shift (time_maa_x and
// the [C, 5D] / [5, D, C] time_maa_w1/w2 low-rank matrices) and decay
// (time_decay_w1/w2). web-rwkv renames time_maa to time_mix and time_faaaa
// to time_first, and stores the low-rank matrices [out, in].
var gen6 = generation{
	versions: []Version{V6},
	detect: func(d *detector) Version {
		if d.att("time_maa_x") != nil || d.att("time_mix_x") != nil {
			return V6
		}
		return ""
	},
	heads: func(d *detector) *Tensor { return d.first("time_faaaa", "time_first") },
	lowRank: func(d *detector) {
		d.info.MixLoRA = d.lowRank(d.first("time_maa_w1", "time_mix_w1"), 5)
		d.info.DecayLoRA = d.lowRank(d.att("time_decay_w1"), 1)
	},
	stateKeyMajor: true,
}
