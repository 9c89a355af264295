package gguf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rwkvkit/rwkvkit/format"
)

// How a tensor's shape differs between the two layouts.
const (
	sameShape = iota
	vector    // web-rwkv [1, 1, C], GGUF [C] (the converter squeezes it)
	heads     // web-rwkv [H, N], GGUF [H·N] (r_k, flattened)
)

// A name pairs a web-rwkv tensor name (relative to blocks.N. for layer
// tensors) with its GGUF name (relative to blk.N.).
type name struct {
	web, gguf string
	shape     int
}

// The names of llama.cpp's converter (convert_hf_to_gguf.py, classes
// Rwkv6Model and Rwkv7Model, with gguf-py's tensor_mapping.py), in terms
// of the web-rwkv layout: its LoRA matrices are already transposed the way
// the converter transposes them, so every big matrix keeps its shape.
var (
	globalNames = []name{
		{"emb.weight", "token_embd.weight", sameShape},
		{"blocks.0.ln0.weight", "token_embd_norm.weight", sameShape},
		{"blocks.0.ln0.bias", "token_embd_norm.bias", sameShape},
		{"ln_out.weight", "output_norm.weight", sameShape},
		{"ln_out.bias", "output_norm.bias", sameShape},
		{"head.weight", "output.weight", sameShape},
	}
	commonNames = []name{
		{"ln1.weight", "attn_norm.weight", sameShape},
		{"ln1.bias", "attn_norm.bias", sameShape},
		{"ln2.weight", "attn_norm_2.weight", sameShape},
		{"ln2.bias", "attn_norm_2.bias", sameShape},
		{"att.key.weight", "time_mix_key.weight", sameShape},
		{"att.value.weight", "time_mix_value.weight", sameShape},
		{"att.receptance.weight", "time_mix_receptance.weight", sameShape},
		{"att.output.weight", "time_mix_output.weight", sameShape},
		{"att.ln_x.weight", "time_mix_ln.weight", sameShape},
		{"att.ln_x.bias", "time_mix_ln.bias", sameShape},
		{"ffn.key.weight", "channel_mix_key.weight", sameShape},
		{"ffn.value.weight", "channel_mix_value.weight", sameShape},
	}
	v6Names = append(commonNames[:len(commonNames):len(commonNames)],
		name{"att.gate.weight", "time_mix_gate.weight", sameShape},
		name{"att.time_mix_x", "time_mix_lerp_x.weight", vector},
		name{"att.time_mix_w1", "time_mix_w1.weight", sameShape},
		name{"att.time_mix_w2", "time_mix_w2.weight", sameShape},
		name{"att.time_decay", "time_mix_decay.weight", vector},
		name{"att.time_decay_w1", "time_mix_decay_w1.weight", sameShape},
		name{"att.time_decay_w2", "time_mix_decay_w2.weight", sameShape},
		name{"att.time_first", "time_mix_first.weight", sameShape},
		name{"ffn.time_mix_k", "channel_mix_lerp_k.weight", vector},
		name{"ffn.time_mix_r", "channel_mix_lerp_r.weight", vector},
		name{"ffn.receptance.weight", "channel_mix_receptance.weight", sameShape},
		// Older files keep the five mixes apart; llama.cpp reads either.
		name{"att.time_mix_w", "time_mix_lerp_w.weight", vector},
		name{"att.time_mix_k", "time_mix_lerp_k.weight", vector},
		name{"att.time_mix_v", "time_mix_lerp_v.weight", vector},
		name{"att.time_mix_r", "time_mix_lerp_r.weight", vector},
		name{"att.time_mix_g", "time_mix_lerp_g.weight", vector},
	)
	v7Names = append(commonNames[:len(commonNames):len(commonNames)],
		name{"att.w0", "time_mix_w0.weight", vector},
		name{"att.w1", "time_mix_w1.weight", sameShape},
		name{"att.w2", "time_mix_w2.weight", sameShape},
		name{"att.a0", "time_mix_a0.weight", vector},
		name{"att.a1", "time_mix_a1.weight", sameShape},
		name{"att.a2", "time_mix_a2.weight", sameShape},
		name{"att.v0", "time_mix_v0.weight", vector},
		name{"att.v1", "time_mix_v1.weight", sameShape},
		name{"att.v2", "time_mix_v2.weight", sameShape},
		name{"att.g1", "time_mix_g1.weight", sameShape},
		name{"att.g2", "time_mix_g2.weight", sameShape},
		name{"att.k_k", "time_mix_k_k.weight", vector},
		name{"att.k_a", "time_mix_k_a.weight", vector},
		name{"att.r_k", "time_mix_r_k.weight", heads},
		name{"ffn.x_k", "channel_mix_lerp_k.weight", vector},
	)
)

// fusedName is the GGUF tensor that stacks a layer's token-shift mixes,
// [k, 1, 1, C] in numpy order, and fusedParts are the mixes in its order.
const fusedName = "time_mix_lerp_fused.weight"

var fusedParts = map[format.Version][]string{
	format.V6: {"att.time_mix_w", "att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "att.time_mix_g"},
	format.V7: {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g"},
}

// arch is the GGUF architecture of a version.
func arch(v format.Version) string {
	if v == format.V6 {
		return "rwkv6"
	}
	return "rwkv7"
}

// layerNames returns the per-layer names of a version.
func layerNames(v format.Version) []name {
	if v == format.V6 {
		return v6Names
	}
	return v7Names
}

// splitLayer splits "PREFIX.N.rest" into N and rest.
func splitLayer(s, prefix string) (int, string, bool) {
	rest, ok := strings.CutPrefix(s, prefix+".")
	if !ok {
		return 0, "", false
	}
	num, rest, ok := strings.Cut(rest, ".")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 0 || strconv.Itoa(n) != num {
		return 0, "", false
	}
	return n, rest, true
}

// toGGUF maps a web-rwkv tensor name to its GGUF name and shape kind.
func toGGUF(v format.Version, web string) (string, int, error) {
	if gg, shape, ok := rename(v, web, true); ok {
		return gg, shape, nil
	}
	return "", 0, fmt.Errorf("tensor %q has no place in llama.cpp's %s", web, arch(v))
}

// fromGGUF maps a GGUF tensor name to its web-rwkv name and shape kind.
func fromGGUF(v format.Version, gg string) (string, int, bool) {
	return rename(v, gg, false)
}

// rename maps s, a web-rwkv name when toGGUF and a GGUF name otherwise, to
// its name in the other layout and its shape kind.
func rename(v format.Version, s string, toGGUF bool) (string, int, bool) {
	halves := func(n name) (from, to string) {
		if toGGUF {
			return n.web, n.gguf
		}
		return n.gguf, n.web
	}
	fromLayer, toLayer := "blk", "blocks"
	if toGGUF {
		fromLayer, toLayer = toLayer, fromLayer
	}
	for _, n := range globalNames {
		if from, to := halves(n); from == s {
			return to, n.shape, true
		}
	}
	if l, rest, ok := splitLayer(s, fromLayer); ok {
		for _, n := range layerNames(v) {
			if from, to := halves(n); from == rest {
				return fmt.Sprintf("%s.%d.%s", toLayer, l, to), n.shape, true
			}
		}
	}
	return "", 0, false
}
