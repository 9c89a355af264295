package format_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	_ "github.com/rwkvkit/rwkvkit/safetensors"
)

var tinyModels = []struct{ pth, st string }{
	{"tiny-rwkv-4v0-660K.pth", "st/tiny-rwkv-4v0-660K.st"},
	{"tiny-rwkv-5v1-730K.pth", "st/tiny-rwkv-5v1-730K.st"},
	{"tiny-rwkv-5v2-730K.pth", "st/tiny-rwkv-5v2-730K.st"},
	{"tiny-rwkv-6v0-1m.pth", "st/tiny-rwkv-6v0-1m.st"},
	{"tiny-rwkv-7v0-834K.pth", "st/tiny-rwkv-7v0-834K.st"},
}

func open(t *testing.T, name string) *format.Source {
	t.Helper()
	src, err := format.Open(filepath.Join("../fixtures/rwkv-tiny", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// A model is detected once: Detect records what it finds in the source,
// WebRWKV's result carries the model in its new layout, and that is what
// Detect finds in web-rwkv's own conversion of the same checkpoint (the
// fixtures' .st files) and in the converted tensors alone.
func TestInfoTravelsWithTheSource(t *testing.T) {
	for _, tm := range tinyModels {
		t.Run(tm.pth, func(t *testing.T) {
			src := open(t, tm.pth)
			info, err := format.Detect(src)
			if err != nil {
				t.Fatal(err)
			}
			if src.Info == nil || *src.Info != info {
				t.Fatalf("after Detect, Info is %+v; want %+v", src.Info, info)
			}
			// Detect returns the record, whatever the tensors say now.
			kept := src.Tensors
			src.Tensors = nil
			if again, err := format.Detect(src); err != nil || again != info {
				t.Errorf("second Detect: %+v, %v", again, err)
			}
			src.Tensors = kept

			conv, err := format.WebRWKV(src)
			if err != nil {
				t.Fatal(err)
			}
			if conv.Info == nil || conv.Info.Layout != format.LayoutWebRWKV {
				t.Fatalf("WebRWKV's Info: %+v", conv.Info)
			}
			fresh, err := format.Detect(&format.Source{Format: "safetensors", Tensors: conv.Tensors})
			if err != nil || fresh != *conv.Info {
				t.Errorf("the converted tensors are detected as %+v (%v); WebRWKV carries %+v", fresh, err, *conv.Info)
			}
			ref, err := format.Detect(open(t, tm.st))
			if err != nil || ref != *conv.Info {
				t.Errorf("web-rwkv's conversion is detected as %+v (%v); WebRWKV carries %+v", ref, err, *conv.Info)
			}
			if d := conv.Derive(); d.Info != conv.Info || d.Format != conv.Format || len(d.Tensors) != 0 {
				t.Errorf("Derive: %+v", d)
			}
			f16, err := format.CastF16(conv)
			if err != nil || f16.Info != conv.Info {
				t.Errorf("CastF16 drops the model: %v", err)
			}
		})
	}
}

// A v5.1 (gated, per-head decay) becomes a v5.2 in web-rwkv's layout: its
// decay and bonus are repeated per channel.
func TestWebRWKVMakesV51AV52(t *testing.T) {
	const H, N = 2, 3
	src := &format.Source{Format: "pth"}
	add := func(name string, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		b := make([]byte, 4*n)
		for i := range b {
			b[i] = byte(i)
		}
		tn, err := format.NewTensor(name, format.F32, shape, format.BytesOpener(b))
		if err != nil {
			t.Fatal(err)
		}
		src.Tensors = append(src.Tensors, tn)
	}
	add("emb.weight", 10, H*N)
	add("blocks.0.att.ln_x.weight", H*N)
	add("blocks.0.att.gate.weight", H*N, H*N)
	add("blocks.0.att.time_decay", H)
	add("blocks.0.att.time_faaaa", H)
	conv, err := format.WebRWKV(src)
	if err != nil {
		t.Fatal(err)
	}
	if src.Info.Version != format.V5_1 || conv.Info.Version != format.V5_2 {
		t.Fatalf("versions %s → %s, want 5.1 → 5.2", src.Info.Version, conv.Info.Version)
	}
	for _, name := range []string{"blocks.0.att.time_decay", "blocks.0.att.time_first"} {
		d := conv.Lookup(name)
		b, err := d.Bytes()
		if err != nil || !slices.Equal(d.Shape, []int64{H, N}) || len(b) != 4*H*N || b[4*N] != 4 || b[0] != 0 || b[4] != 0 {
			t.Errorf("%s: shape %v, bytes % x, %v", name, d.Shape, b, err)
		}
	}
}

// A LoRA or state file converts once: in RWKV-LM's layout (a name the
// converter changes; or names alike in both layouts, outside safetensors)
// it is renamed and transposed; in web-rwkv's (lora.0/lora.1 pairs; or names
// alike in both, in safetensors) it is returned as it is, so converting a
// converted file changes nothing; names of both layouts are refused.
func TestWebRWKVLoRAAndStateConvertOnce(t *testing.T) {
	tensor := func(name string, shape ...int64) *format.Tensor {
		tn, err := format.NewTensor(name, format.F32, shape, format.BytesOpener(make([]byte, 4*shape[0]*shape[1])))
		if err != nil {
			t.Fatal(err)
		}
		return tn
	}
	for _, c := range []struct {
		name, format string
		tensors      []*format.Tensor
		converted    bool // returned as it is
		err          error
	}{
		{"RWKV-LM pair in .st", "safetensors", []*format.Tensor{tensor("blocks.0.att.key.lora_A", 2, 3), tensor("blocks.0.att.key.lora_B", 3, 2)}, false, nil},
		{"RWKV-LM pair in .pth", "pth", []*format.Tensor{tensor("blocks.0.att.key.lora_A", 2, 3), tensor("blocks.0.att.key.lora_B", 3, 2)}, false, nil},
		{"web-rwkv pair in .st", "safetensors", []*format.Tensor{tensor("blocks.0.att.key.lora.0", 3, 2), tensor("blocks.0.att.key.lora.1", 3, 2)}, true, nil},
		{"web-rwkv pair in .pth", "pth", []*format.Tensor{tensor("blocks.0.att.key.lora.0", 3, 2), tensor("blocks.0.att.key.lora.1", 3, 2)}, true, nil},
		{"state in .pth", "pth", []*format.Tensor{tensor("blocks.0.att.time_state", 2, 3)}, false, nil},
		{"state in .st", "safetensors", []*format.Tensor{tensor("blocks.0.att.time_state", 2, 3)}, true, nil},
		{"state made in memory", "", []*format.Tensor{tensor("blocks.0.att.time_state", 2, 3)}, false, nil},
		{"state in .st, upper case", "safetensors", []*format.Tensor{tensor("blocks.0.Att.time_state", 2, 3)}, false, nil},
		{"state in .st, title case", "safetensors", []*format.Tensor{tensor("blocks.0.att.ǅtime_state", 2, 3)}, false, nil},
		{"RWKV-6 LoRA with a time_maa full tensor", "safetensors", []*format.Tensor{tensor("blocks.0.att.time_maa_w1", 4, 2), tensor("blocks.0.att.key.lora.0", 3, 2)}, false, format.ErrMixedLayout},
		{"both pair namings", "safetensors", []*format.Tensor{tensor("blocks.0.att.key.lora_A", 2, 3), tensor("blocks.0.att.value.lora.1", 3, 2)}, false, format.ErrMixedLayout},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := &format.Source{Format: c.format, Tensors: c.tensors}
			conv, err := format.WebRWKV(src)
			if !errors.Is(err, c.err) {
				t.Fatalf("WebRWKV: %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if got := conv == src; got != c.converted {
				t.Fatalf("returned as it is: %v, want %v", got, c.converted)
			}
			if c.converted {
				return
			}
			for _, tn := range conv.Tensors {
				if name, _ := format.WebRWKVName(tn.Name); name != tn.Name {
					t.Errorf("%s: not renamed", tn.Name)
				}
			}
			// The converted tensors are web-rwkv's: as a .st, converting
			// them again changes nothing.
			again := &format.Source{Format: "safetensors", Tensors: conv.Tensors}
			if c2, err := format.WebRWKV(again); err != nil || c2 != again {
				t.Errorf("converting the result again: %v, changed %v", err, c2 != again)
			}
		})
	}
}
