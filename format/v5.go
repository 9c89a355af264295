package format

import "strings"

// RWKV-5: heads with a matrix memory and a group norm (ln_x). Three kinds,
// told apart by their decay and gate: v5.0 has a per-head decay and no
// gate; v5.1 (ChatRWKV's gated variant) a per-head decay and a gate; v5.2 a
// decay per channel, [H, N], and a gate.
var gen5 = generation{
	versions: []Version{V5_0, V5_1, V5_2},
	detect: func(d *detector) Version {
		if d.att("ln_x.weight") == nil {
			return ""
		}
		decay := d.att("time_decay")
		switch {
		case decay != nil && len(decay.Shape) == 2 && decay.Shape[1] > 1:
			return V5_2
		case d.att("gate.weight") != nil:
			return V5_1
		}
		return V5_0
	},
	heads:     func(d *detector) *Tensor { return d.att("time_decay") },
	toWebRWKV: webRWKV5,
	webRWKVInfo: func(info *ModelInfo) {
		if info.Version == V5_1 {
			info.Version = V5_2 // its decay is now per channel
		}
	},
	stateKeyMajor: true,
}

// webRWKV5 repeats v5.1's per-head decay and bonus over the channels of
// each head, [H] to [H, N], as web-rwkv's converter does; that makes the
// model a v5.2 (whose decay is per channel), which is how web-rwkv runs it.
func webRWKV5(t *Tensor, info ModelInfo) (*Tensor, error) {
	if info.Version == V5_1 && len(t.Shape) == 1 &&
		(strings.HasSuffix(t.Name, ".time_decay") || strings.HasSuffix(t.Name, ".time_faaaa") || strings.HasSuffix(t.Name, ".time_first")) {
		return repeatColumns(t, int64(info.HeadSize))
	}
	return t, nil
}
