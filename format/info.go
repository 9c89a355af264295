package format

import (
	"fmt"
	"slices"
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

// A generation is what rwkvkit knows of the files of one RWKV generation;
// each has its own file (v4.go, v5.go, v6.go, v7.go). Package runner keeps
// the computation of each generation in files of the same names.
type generation struct {
	// versions are the versions of the generation.
	versions []Version
	// detect returns the version of a model whose layer-0 tensors d looks
	// up, or "" when they are not of this generation.
	detect func(d *detector) Version
	// heads returns the layer-0 time-mix tensor whose first dimension is
	// the number of heads; nil for none.
	heads func(d *detector) *Tensor
	// lowRank sets the low-rank dimensions of d.info, if the generation
	// has any.
	lowRank func(d *detector)
	// toWebRWKV returns t, a tensor of the model info describes, as
	// web-rwkv's converter leaves it beyond the renames and transposes
	// every version shares (nil: nothing more), and webRWKVInfo changes
	// the description of a model so converted (nil: only its layout).
	toWebRWKV   func(t *Tensor, info ModelInfo) (*Tensor, error)
	webRWKVInfo func(info *ModelInfo)
	// stateKeyMajor: the time-mix memory of a head is [key][value] in
	// docs/rwkv-math.md (false: [value][key]).
	stateKeyMajor bool
}

// generations are tried in this order by Detect; the last one (v4) takes
// any model the others do not.
var generations = []*generation{&gen7, &gen6, &gen5, &gen4}

// generationOf returns the generation of v, nil for an unknown version.
func generationOf(v Version) *generation {
	for _, g := range generations {
		if slices.Contains(g.versions, v) {
			return g
		}
	}
	return nil
}

// StateKeyMajor reports whether docs/rwkv-math.md indexes a head's time-mix
// memory in version v as [key][value] (v5, v6) rather than [value][key]
// (v7); v4 has no matrix memory. A time_state tensor (a state-tuned
// initial memory) is [head][value][key] in the RWKV-LM layout for every
// version, as the state-tuning kernels take it, and [head][key][value] in
// web-rwkv's, whose converter transposes it (docs/web-rwkv-layout.md §1).
func (v Version) StateKeyMajor() bool {
	g := generationOf(v)
	return g != nil && g.stateKeyMajor
}

// A detector holds what Detect has found so far.
type detector struct {
	src  *Source
	info ModelInfo
}

func (d *detector) get(name string) *Tensor { return d.src.Lookup(name) }

// att returns the layer-0 time-mix tensor called name.
func (d *detector) att(name string) *Tensor { return d.get("blocks.0.att." + name) }

// first returns the first of the layer-0 time-mix tensors names that exists.
func (d *detector) first(names ...string) *Tensor {
	for _, n := range names {
		if t := d.att(n); t != nil {
			return t
		}
	}
	return nil
}

// lowRank returns the low-rank dimension (divided by div) of a matrix t
// that joins the embedding to it, noting the RWKV-LM layout when t is
// stored [C, D] rather than web-rwkv's [D, C]. It is 0 for no t.
func (d *detector) lowRank(t *Tensor, div int64) int {
	if t == nil || len(t.Shape) < 2 {
		return 0
	}
	C := int64(d.info.Embed)
	a, b := t.Shape[len(t.Shape)-2], t.Shape[len(t.Shape)-1]
	if a == C && b != C {
		d.info.Layout = LayoutRWKVLM
		return int(b / div)
	}
	return int(a / div)
}

// Detect works out the version, dimensions and layout of the model in src.
// It accepts both the RWKV-LM and the web-rwkv layout, and quantized
// tensors. The first successful Detect records its result in src.Info,
// which later calls return as it is.
func Detect(src *Source) (ModelInfo, error) {
	if src.Info != nil {
		return *src.Info, nil
	}
	d := &detector{src: src}
	info := &d.info
	emb := d.get("emb.weight")
	if emb == nil || len(emb.Shape) != 2 {
		return *info, fmt.Errorf("%w: no 2-D emb.weight", ErrNotModel)
	}
	info.Vocab, info.Embed = int(emb.Shape[0]), int(emb.Shape[1])
	if info.Embed <= 0 || info.Vocab <= 0 {
		return *info, fmt.Errorf("%w: emb.weight has shape %v", ErrNotModel, emb.Shape)
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
		return *info, fmt.Errorf("%w: no blocks.N tensors", ErrNotModel)
	}
	var g *generation
	for _, g = range generations {
		if info.Version = g.detect(d); info.Version != "" {
			break
		}
	}
	if k := d.get("blocks.0.ffn.key.weight"); k != nil && len(k.Shape) == 2 {
		info.FFN = int(k.Shape[0])
	}
	if g.heads != nil {
		if heads := g.heads(d); heads != nil {
			if len(heads.Shape) == 0 || heads.Shape[0] <= 0 || int64(info.Embed)%heads.Shape[0] != 0 {
				return *info, fmt.Errorf("%w: %s of shape %v does not divide the embedding %d", ErrNotModel, heads.Name, heads.Shape, info.Embed)
			}
			info.Heads = int(heads.Shape[0])
			info.HeadSize = info.Embed / info.Heads
		}
	}
	if g.lowRank != nil {
		g.lowRank(d)
	}
	src.Info = info
	return *info, nil
}
