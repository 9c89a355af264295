package quantize_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
)

func TestParseLayers(t *testing.T) {
	tests := []struct {
		spec    string
		n       int
		want    string // fmt of the layers, or "error: substring"
		comment string
	}{
		{"all", 4, "[0 1 2 3]", ""},
		{" ALL ", 2, "[0 1]", "case and spaces"},
		{"3", 12, "[0 1 2]", "N means layers 0..N-1 (web-rwkv --quant N)"},
		{"0", 12, "[]", ""},
		{"12", 12, "[0 1 2 3 4 5 6 7 8 9 10 11]", "N = the model's layers means all"},
		{"40", 12, "error: 40 layers, but the model has 12", "one rule: a count beyond the model is an error"},
		{"0-5,9", 12, "[0 1 2 3 4 5 9]", ""},
		{"9,10", 12, "[9 10]", "a list names layers"},
		{"9-9", 12, "[9]", "one layer"},
		{"4-6, 2-5 ,11", 12, "[2 3 4 5 6 11]", "overlaps and spaces"},
		{"", 12, "error: empty", ""},
		{"5-3", 12, "error: backwards", ""},
		{"0-12", 12, "error: layer 12 does not exist", ""},
		{"-3", 12, "error: negative", ""},
		{"1,x", 12, "error: \"x\" is not a layer", ""},
		{"1-", 12, "error: \"1-\"", ""},
		{"1,,2", 12, "error: \"\"", ""},
		{"+3,4", 12, "error: \"+3\"", ""},
		{"1-2-3", 12, "error: \"1-2-3\"", ""},
	}
	for _, tt := range tests {
		got, err := quantize.ParseLayers(tt.spec, tt.n)
		// CheckLayerSpec, knowing no model, refuses what is wrong
		// whatever the model: every error but those of its size.
		syntax := err != nil && !strings.Contains(err.Error(), "the model has")
		if cerr := quantize.CheckLayerSpec(tt.spec); (cerr != nil) != syntax || (syntax && cerr.Error() != err.Error()) {
			t.Errorf("CheckLayerSpec(%q) = %v; ParseLayers(%q, %d): %v", tt.spec, cerr, tt.spec, tt.n, err)
		}
		if e, ok := strings.CutPrefix(tt.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), e) {
				t.Errorf("ParseLayers(%q, %d) = %v, %v; want an error containing %q", tt.spec, tt.n, got, err, e)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != tt.want {
			t.Errorf("ParseLayers(%q, %d) = %v, %v; want %s %s", tt.spec, tt.n, got, err, tt.want, tt.comment)
		}
	}
}

func TestQuantizableLayer(t *testing.T) {
	yes := map[string]int{
		"blocks.0.att.key.weight": 0, "blocks.11.att.value.weight": 11, "blocks.3.att.receptance.weight": 3,
		"blocks.3.att.output.weight": 3, "blocks.3.att.gate.weight": 3, "blocks.7.ffn.key.weight": 7,
		"blocks.7.ffn.value.weight": 7, "blocks.7.ffn.receptance.weight": 7,
	}
	for name, l := range yes {
		if got, ok := quantize.QuantizableLayer(name); !ok || got != l {
			t.Errorf("%s: %d, %v; want layer %d", name, got, ok, l)
		}
	}
	for _, name := range []string{
		"emb.weight", "head.weight", "ln_out.weight", "blocks.0.ln1.weight",
		"blocks.0.att.time_mix_w1", "blocks.0.att.time_mix_w2", "blocks.0.att.time_decay_w1", "blocks.0.att.time_maa_w1",
		"blocks.0.att.w1", "blocks.0.att.w2", "blocks.0.att.a1", "blocks.0.att.a2", "blocks.0.att.g1", "blocks.0.att.g2",
		"blocks.1.att.v1", "blocks.1.att.v2", "blocks.0.att.key.bias", "blocks.0.att.key.weight.lora.0",
		"blocks.01.att.key.weight", "blocks.-1.att.key.weight", "blocks.x.att.key.weight", "xblocks.0.att.key.weight",
		"blocks.0.att.time_decay", "blocks.0.ffn.gate.weight",
	} {
		if l, ok := quantize.QuantizableLayer(name); ok {
			t.Errorf("%s: quantizable (layer %d), want not", name, l)
		}
	}
}

func TestPlanLaterRuleWins(t *testing.T) {
	p, err := quantize.NewPlan(12,
		quantize.Rule{Kind: format.Int8Block, Layers: "all"},
		quantize.Rule{Kind: format.NF4Block, Layers: "4-7"},
		quantize.Rule{Kind: format.Int8Block, Layers: "6-6"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != "Int8 layers 0-3,6,8-11; NF4 layers 4-5,7" {
		t.Errorf("plan %q", got)
	}
	for name, want := range map[string]format.DType{
		"blocks.5.att.key.weight": format.NF4Block, "blocks.6.ffn.value.weight": format.Int8Block,
		"blocks.0.att.gate.weight": format.Int8Block, "emb.weight": format.Invalid,
	} {
		if k, ok := p.Kind(name); k != want || ok != (want != format.Invalid) {
			t.Errorf("Kind(%s) = %v, %v; want %v", name, k, ok, want)
		}
	}
	if _, err := quantize.NewPlan(12, quantize.Rule{Kind: format.F16, Layers: "all"}); err == nil {
		t.Error("F16 rule accepted")
	}
	if _, err := quantize.NewPlan(12, quantize.Rule{Kind: format.NF4Block, Layers: "3-20"}); err == nil || !strings.Contains(err.Error(), "NF4 layers: ") {
		t.Errorf("bad spec: %v, want an error naming the kind", err)
	}
	if p, _ := quantize.NewPlan(4); p.String() != "nothing quantized" {
		t.Errorf("empty plan %q", p)
	}
}

// FormatLayers writes what ParseLayers reads back as the same layers.
func TestFormatLayersRoundTrip(t *testing.T) {
	for _, ls := range [][]int{{0}, {9}, {0, 1, 2}, {0, 1, 2, 3, 4, 5, 9}, {3, 5, 7}, {11}, {2, 3, 10, 11}} {
		s := quantize.FormatLayers(ls)
		got, err := quantize.ParseLayers(s, 12)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(ls) {
			t.Errorf("%v → %q → %v, %v", ls, s, got, err)
		}
	}
}
