package format

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is an RWKV architecture generation.
type Version string

// The versions rwkvkit runs. V5_0 has no gate and a per-head decay (rwkv.cpp
// calls it 5.1); V5_1 is ChatRWKV's gated variant with a per-head decay.
const (
	V4   Version = "4"
	V5_0 Version = "5.0"
	V5_1 Version = "5.1"
	V5_2 Version = "5.2"
	V6   Version = "6"
	V7   Version = "7"
)

// Layout is the naming and orientation of a model's tensors.
type Layout int

const (
	// LayoutRWKVLM is the layout of RWKV-LM checkpoints (.pth): time_maa,
	// time_faaaa, LoRA-style matrices as [in, out].
	LayoutRWKVLM Layout = iota
	// LayoutWebRWKV is web-rwkv's converted layout: renamed, lower-cased,
	// LoRA-style matrices transposed to [out, in].
	LayoutWebRWKV
)

func (l Layout) String() string {
	if l == LayoutWebRWKV {
		return "web-rwkv"
	}
	return "RWKV-LM"
}

// ModelInfo describes an RWKV model, as detected from its tensor names and shapes.
type ModelInfo struct {
	Version  Version `json:"version"`
	Layout   Layout  `json:"-"`
	Layers   int     `json:"layers"`
	Embed    int     `json:"embed"`
	Heads    int     `json:"heads"`
	HeadSize int     `json:"head_size"`
	Vocab    int     `json:"vocab"`
	FFN      int     `json:"ffn"`
	// Low-rank dimensions: v6 token-shift mix (TimeMix) and decay; v7 decay
	// (w), in-context learning rate (a), value residual (v) and gate (g).
	MixLoRA   int   `json:"mix_lora,omitempty"`
	DecayLoRA int   `json:"decay_lora,omitempty"`
	ALoRA     int   `json:"a_lora,omitempty"`
	VLoRA     int   `json:"v_lora,omitempty"`
	GLoRA     int   `json:"g_lora,omitempty"`
	Params    int64 `json:"params"`
}

// ErrNotModel is wrapped by Detect's error for a source that is not an RWKV model.
var ErrNotModel = fmt.Errorf("not an RWKV model")

// Detect works out the version, dimensions and layout of the model in src.
// It accepts both the RWKV-LM and the web-rwkv layout, and quantized tensors.
func Detect(src *Source) (ModelInfo, error) {
	var info ModelInfo
	get := func(name string) *Tensor { return src.Lookup(name) }
	emb := get("emb.weight")
	if emb == nil || len(emb.Shape) != 2 {
		return info, fmt.Errorf("%w: no 2-D emb.weight", ErrNotModel)
	}
	info.Vocab, info.Embed = int(emb.Shape[0]), int(emb.Shape[1])
	if info.Embed <= 0 || info.Vocab <= 0 {
		return info, fmt.Errorf("%w: emb.weight has shape %v", ErrNotModel, emb.Shape)
	}
	info.Layout = LayoutWebRWKV
	for _, t := range src.Tensors {
		info.Params += t.Len()
		if strings.Contains(t.Name, "time_maa") || strings.Contains(t.Name, "time_faaaa") {
			info.Layout = LayoutRWKVLM
		}
		if rest, ok := strings.CutPrefix(t.Name, "blocks."); ok {
			i := strings.IndexByte(rest, '.')
			if n, err := strconv.Atoi(rest[:max(i, 0)]); err == nil && n >= 0 && n < 1<<20 && n+1 > info.Layers {
				info.Layers = n + 1
			}
		}
	}
	if info.Layers == 0 {
		return info, fmt.Errorf("%w: no blocks.N tensors", ErrNotModel)
	}
	att := func(s string) *Tensor { return get("blocks.0.att." + s) }
	first := func(names ...string) *Tensor {
		for _, n := range names {
			if t := att(n); t != nil {
				return t
			}
		}
		return nil
	}
	switch {
	case att("r_k") != nil:
		info.Version = V7
	case att("time_maa_x") != nil || att("time_mix_x") != nil:
		info.Version = V6
	case att("ln_x.weight") != nil:
		decay := att("time_decay")
		switch {
		case decay != nil && len(decay.Shape) == 2 && decay.Shape[1] > 1:
			info.Version = V5_2
		case att("gate.weight") != nil:
			info.Version = V5_1
		default:
			info.Version = V5_0
		}
	default:
		info.Version = V4
	}
	if k := get("blocks.0.ffn.key.weight"); k != nil && len(k.Shape) == 2 {
		info.FFN = int(k.Shape[0])
	}
	var heads *Tensor
	switch info.Version {
	case V7:
		heads = att("r_k")
	case V6:
		heads = first("time_faaaa", "time_first")
	case V5_0, V5_1, V5_2:
		heads = att("time_decay")
	}
	if heads != nil {
		if len(heads.Shape) == 0 || heads.Shape[0] <= 0 || int64(info.Embed)%heads.Shape[0] != 0 {
			return info, fmt.Errorf("%w: %s of shape %v does not divide the embedding %d", ErrNotModel, heads.Name, heads.Shape, info.Embed)
		}
		info.Heads = int(heads.Shape[0])
		info.HeadSize = info.Embed / info.Heads
	}
	// lora returns the low-rank dimension of a matrix that joins C to D,
	// and whether it is stored [C, D] (RWKV-LM) or [D, C] (web-rwkv).
	C := int64(info.Embed)
	lora := func(t *Tensor, div int64) int {
		if t == nil || len(t.Shape) < 2 {
			return 0
		}
		a, b := t.Shape[len(t.Shape)-2], t.Shape[len(t.Shape)-1]
		switch {
		case a == C && b != C:
			info.Layout = LayoutRWKVLM
			return int(b / div)
		case b == C && a != C:
			return int(a / div)
		}
		return int(a / div)
	}
	switch info.Version {
	case V6:
		info.MixLoRA = lora(first("time_maa_w1", "time_mix_w1"), 5)
		info.DecayLoRA = lora(att("time_decay_w1"), 1)
	case V7:
		info.DecayLoRA = lora(att("w1"), 1)
		info.ALoRA = lora(att("a1"), 1)
		info.GLoRA = lora(att("g1"), 1)
		for l := 1; l < info.Layers; l++ {
			if v := get(fmt.Sprintf("blocks.%d.att.v1", l)); v != nil {
				info.VLoRA = lora(v, 1)
				break
			}
		}
	}
	if src.Format == "pth" && info.Version == V7 && info.DecayLoRA == info.Embed {
		// w1 is square: only the file kind tells the layouts apart.
		info.Layout = LayoutRWKVLM
	}
	return info, nil
}

// StateKeyMajor reports whether docs/rwkv-math.md indexes a head's time-mix
// memory in version v as [key][value] (v5, v6) rather than [value][key]
// (v7); v4 has no matrix memory. A time_state tensor (a state-tuned
// initial memory) is [head][value][key] in the RWKV-LM layout for every
// version, as the state-tuning kernels take it, and [head][key][value] in
// web-rwkv's, whose converter transposes it (docs/web-rwkv-layout.md §1).
func (v Version) StateKeyMajor() bool { return v != V7 }
