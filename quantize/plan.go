package quantize

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rwkvkit/rwkvkit/format"
)

// ParseLayers returns the layers (ascending, without repeats) that spec
// names in a model of nLayers layers: "all"; a single number N for layers
// 0…N−1, as web-rwkv's --quant N; or a comma list of layers and inclusive
// ranges, "0-5,9" (a list names layers, so "9,10" is two layers; one layer
// alone is written "9-9"). One rule holds for both: naming more layers than
// the model has (N above nLayers, a layer at or past nLayers) is an error.
func ParseLayers(spec string, nLayers int) ([]int, error) {
	if nLayers < 0 {
		return nil, fmt.Errorf("layer spec %q: negative layer count %d", spec, nLayers)
	}
	l, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	switch {
	case l.all:
		return seq(0, nLayers), nil
	case l.count >= 0:
		if l.count > nLayers {
			return nil, fmt.Errorf("layer spec %q: %d layers, but the model has %d (give all, or at most %d)", spec, l.count, nLayers, nLayers)
		}
		return seq(0, l.count), nil
	}
	var out []int
	for _, r := range l.ranges {
		if r[1] >= nLayers {
			return nil, fmt.Errorf("layer spec %q: layer %d does not exist (the model has %d layers, 0-%d)", spec, r[1], nLayers, nLayers-1)
		}
		out = append(out, seq(r[0], r[1]+1)...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CheckLayerSpec returns the error ParseLayers gives for spec in a model of
// any number of layers: its syntax, checked before the model is known.
func CheckLayerSpec(spec string) error {
	_, err := parseSpec(spec)
	return err
}

// A layerSpec is a spec as written: all, a count (−1: not one) or ranges.
type layerSpec struct {
	all    bool
	count  int
	ranges [][2]int // inclusive
}

func parseSpec(spec string) (layerSpec, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return layerSpec{}, fmt.Errorf("layer spec is empty (want all, N, or ranges like 0-5,9)")
	}
	if strings.EqualFold(s, "all") {
		return layerSpec{all: true, count: -1}, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return layerSpec{}, fmt.Errorf("layer spec %q: negative layer count", spec)
		}
		return layerSpec{count: n}, nil
	}
	l := layerSpec{count: -1}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		a, b, isRange := strings.Cut(part, "-")
		lo, err1 := layerNumber(a)
		hi, err2 := lo, error(nil)
		if isRange {
			hi, err2 = layerNumber(b)
		}
		if err1 != nil || err2 != nil {
			return layerSpec{}, fmt.Errorf("layer spec %q: %q is not a layer or a range of layers (want all, N, or ranges like 0-5,9)", spec, part)
		}
		if hi < lo {
			return layerSpec{}, fmt.Errorf("layer spec %q: range %q runs backwards", spec, part)
		}
		l.ranges = append(l.ranges, [2]int{lo, hi})
	}
	return l, nil
}

func layerNumber(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("not a layer number")
	}
	return strconv.Atoi(s)
}

func seq(lo, hi int) []int {
	out := make([]int, 0, max(hi-lo, 0))
	for i := lo; i < hi; i++ {
		out = append(out, i)
	}
	return out
}

// A Rule asks for the layers of a spec (as ParseLayers reads it) to be
// quantized to Kind (format.Int8Block, format.NF4Block or format.SF4Block).
type Rule struct {
	Kind   format.DType
	Layers string
}

// A Plan says which tensors of a model are quantized, and to which kind.
type Plan struct {
	kinds []format.DType // per layer; Invalid = not quantized
}

// NewPlan makes the plan for a model of nLayers layers from rules in the
// order they were given: where two rules cover a layer, the later one wins.
func NewPlan(nLayers int, rules ...Rule) (*Plan, error) {
	p := &Plan{kinds: make([]format.DType, nLayers)}
	for _, r := range rules {
		if !r.Kind.Quantized() {
			return nil, fmt.Errorf("quantize: %v is not a quantized kind", r.Kind)
		}
		layers, err := ParseLayers(r.Layers, nLayers)
		if err != nil {
			return nil, fmt.Errorf("quantize: %s layers: %w", kindName(r.Kind), err)
		}
		for _, l := range layers {
			p.kinds[l] = r.Kind
		}
	}
	return p, nil
}

// Kind returns the kind the tensor named name is quantized to, and false
// when it stays as it is.
func (p *Plan) Kind(name string) (format.DType, bool) {
	l, ok := QuantizableLayer(name)
	if !ok || l >= len(p.kinds) || p.kinds[l] == format.Invalid {
		return format.Invalid, false
	}
	return p.kinds[l], true
}

// Layers returns the layers quantized to kind.
func (p *Plan) Layers(kind format.DType) []int {
	var out []int
	for l, k := range p.kinds {
		if k == kind {
			out = append(out, l)
		}
	}
	return out
}

// String summarises the plan: "Int8 layers 0-5; NF4 layers 6-11".
func (p *Plan) String() string {
	var parts []string
	for _, k := range []format.DType{format.Int8Block, format.NF4Block, format.SF4Block} {
		if ls := p.Layers(k); len(ls) > 0 {
			parts = append(parts, fmt.Sprintf("%s layers %s", kindName(k), FormatLayers(ls)))
		}
	}
	if len(parts) == 0 {
		return "nothing quantized"
	}
	return strings.Join(parts, "; ")
}

func kindName(k format.DType) string {
	switch k {
	case format.Int8Block:
		return "Int8"
	case format.SF4Block:
		return "SF4"
	}
	return "NF4"
}

// FormatLayers writes ascending layers in the SPEC syntax, so that
// ParseLayers reads them back: "0-5,9"; a single layer alone is "9-9"
// ("9" would be a count).
func FormatLayers(ls []int) string {
	if len(ls) == 1 {
		return fmt.Sprintf("%d-%d", ls[0], ls[0])
	}
	var parts []string
	for i := 0; i < len(ls); {
		j := i
		for j+1 < len(ls) && ls[j+1] == ls[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(ls[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ls[i], ls[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// quantized lists the per-layer matrices that web-rwkv quantizes. The names
// are the same in RWKV-LM checkpoints and in web-rwkv's layout.
var quantized = map[string]bool{
	"att.key.weight": true, "att.value.weight": true, "att.receptance.weight": true,
	"att.output.weight": true, "att.gate.weight": true,
	"ffn.key.weight": true, "ffn.value.weight": true, "ffn.receptance.weight": true,
}

// QuantizableLayer reports whether name is one of the matrices web-rwkv
// quantizes (blocks.N.att.key/value/receptance/output/gate.weight and
// blocks.N.ffn.key/value/receptance.weight), and its layer N. Embeddings,
// the head, LoRA-style matrices (v6 time_mix_w1…, v7 w1, a1, …) and vectors
// are never quantized.
func QuantizableLayer(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "blocks.")
	if !ok {
		return 0, false
	}
	num, tail, ok := strings.Cut(rest, ".")
	if !ok || !quantized[tail] {
		return 0, false
	}
	l, err := layerNumber(num)
	if err != nil || strconv.Itoa(l) != num {
		return 0, false
	}
	return l, true
}
