package lora

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

func TestOpenEntries(t *testing.T) {
	a := mustOpen(t,
		tensor(t, "blocks.0.att.key.lora_A", F16, []int64{3, 5}, make([]float32, 15)),
		tensor(t, "blocks.0.att.time_maa_k", F16, []int64{1, 1, 5}, make([]float32, 5)),
		tensor(t, "blocks.0.att.key.lora_B", F16, []int64{7, 3}, make([]float32, 21)),
		tensor(t, "blocks.0.att.time_maa_w1.lora_B", F16, []int64{10, 2}, make([]float32, 20)),
		tensor(t, "blocks.0.att.time_maa_w1.lora_A", F16, []int64{2, 5}, make([]float32, 10)))
	if a.Naming != NamingRWKVLM {
		t.Errorf("naming %v, want RWKV-LM", a.Naming)
	}
	want := []struct {
		name    string
		rank    int
		shape   []int64
		tensors []string
	}{
		{"blocks.0.att.key", 3, []int64{7, 5}, []string{"blocks.0.att.key.lora_A", "blocks.0.att.key.lora_B"}},
		{"blocks.0.att.time_mix_k", 0, []int64{1, 1, 5}, []string{"blocks.0.att.time_maa_k"}},
		{"blocks.0.att.time_mix_w1", 2, []int64{10, 5}, []string{"blocks.0.att.time_maa_w1.lora_A", "blocks.0.att.time_maa_w1.lora_B"}},
	}
	if len(a.Entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(a.Entries), len(want))
	}
	for i, w := range want {
		e := &a.Entries[i]
		if e.Name != w.name || e.Rank != w.rank || !slices.Equal(e.Shape, w.shape) || !slices.Equal(e.Tensors(), w.tensors) {
			t.Errorf("entry %d: %q rank %d shape %v tensors %q; want %q rank %d shape %v tensors %q",
				i, e.Name, e.Rank, e.Shape, e.Tensors(), w.name, w.rank, w.shape, w.tensors)
		}
	}
}

func TestNaming(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  Naming
	}{
		{[]string{"x.lora.0", "x.lora.1"}, NamingWebRWKV},
		{[]string{"x.lora_A", "x.lora_B", "blocks.0.att.time_mix_k"}, NamingRWKVLM},
		{[]string{"blocks.0.att.time_maa_k"}, NamingRWKVLM},
		{[]string{"blocks.0.att.time_faaaa"}, NamingRWKVLM},
		{[]string{"blocks.0.att.time_mix_k"}, NamingUnknown},
		{[]string{"blocks.0.att.w1"}, NamingUnknown},
	} {
		var ts []*format.Tensor
		for _, n := range c.names {
			ts = append(ts, tensor(t, n, F32, []int64{1, 1}, []float32{0}))
		}
		if got := mustOpen(t, ts...).Naming; got != c.want {
			t.Errorf("%q: naming %v, want %v", c.names, got, c.want)
		}
	}
}

// TestNamingUnknown: full tensors with no telling name follow the base's
// layout; Naming can be set when the caller knows better.
func TestNamingUnknown(t *testing.T) {
	// An RWKV-LM v7-like base whose w1 is [C, D] = [2, 3].
	base := source(
		tensor(t, "emb.weight", F32, []int64{2, 2}, make([]float32, 4)),
		tensor(t, "blocks.0.att.r_k", F32, []int64{1, 2}, make([]float32, 2)),
		tensor(t, "blocks.0.att.w1", F32, []int64{2, 3}, make([]float32, 6)))
	asBase := tensor(t, "blocks.0.att.w1", F32, []int64{2, 3}, seq(6, 1, 1))
	a := mustOpen(t, asBase)
	if got := values(t, mustMerge(t, base, Blend{Adapter: a, Alpha: 1}), "blocks.0.att.w1"); !slices.Equal(got, seq(6, 1, 1)) {
		t.Errorf("as the base: %v", got)
	}
	// The same values declared web-rwkv [D, C] = [3, 2]: transposed into the base.
	web := mustOpen(t, tensor(t, "blocks.0.att.w1", F32, []int64{3, 2}, seq(6, 1, 1)))
	web.Naming = NamingWebRWKV
	if got := values(t, mustMerge(t, base, Blend{Adapter: web, Alpha: 1}), "blocks.0.att.w1"); !slices.Equal(got, []float32{1, 3, 5, 2, 4, 6}) {
		t.Errorf("declared web-rwkv: %v, want [1 3 5 2 4 6]", got)
	}
	if _, err := Merge(context.Background(), base, []Blend{{Adapter: mustOpen(t, tensor(t, "blocks.0.att.w1", F32, []int64{3, 2}, seq(6, 1, 1))), Alpha: 1}}, nil); !errors.Is(err, ErrShape) {
		t.Errorf("undeclared [3, 2]: got %v, want %v", err, ErrShape)
	}
}

func TestOpenErrors(t *testing.T) {
	f := func(name string, dt format.DType, shape ...int64) *format.Tensor {
		n, _ := format.NumElements(shape)
		if dt.Float() {
			return tensor(t, name, dt, shape, make([]float32, n))
		}
		tt, err := format.NewTensor(name, dt, shape, format.BytesOpener(make([]byte, n*int64(dt.Size()))))
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	cases := []struct {
		name    string
		tensors []*format.Tensor
		want    error
		mention string
	}{
		{"empty", nil, ErrEmpty, ""},
		{"A alone", []*format.Tensor{f("m.lora.0", F16, 3, 2)}, ErrUnpaired, `"m.lora.0"`},
		{"B alone", []*format.Tensor{f("m.lora_B", F16, 3, 2)}, ErrUnpaired, `"m.lora_B"`},
		{"mixed namings", []*format.Tensor{f("m.lora_A", F16, 2, 3), f("m.lora.1", F16, 3, 2)}, ErrNaming, `"m.lora.1"`},
		{"rank mismatch", []*format.Tensor{f("m.lora.0", F16, 3, 2), f("m.lora.1", F16, 3, 4)}, ErrRank, `"m.lora.1"`},
		{"rank mismatch PEFT", []*format.Tensor{f("m.lora_A", F16, 2, 3), f("m.lora_B", F16, 3, 3)}, ErrRank, `"m.lora_A"`},
		{"rank 0", []*format.Tensor{f("m.lora.0", F16, 3, 0), f("m.lora.1", F16, 3, 0)}, ErrRank, `"m.lora.0"`},
		{"vector factor", []*format.Tensor{f("m.lora.0", F16, 3), f("m.lora.1", F16, 3, 1)}, ErrShape, `"m.lora.0"`},
		{"3-D factor", []*format.Tensor{f("m.lora.0", F16, 3, 1), f("m.lora.1", F16, 1, 3, 1)}, ErrShape, `"m.lora.1"`},
		{"integer factor", []*format.Tensor{f("m.lora.0", format.I8, 3, 1), f("m.lora.1", F16, 3, 1)}, ErrDType, `"m.lora.0"`},
		{"quantized full", []*format.Tensor{f("m.weight", format.U8, 4)}, ErrDType, `"m.weight"`},
		{"same name after renaming", []*format.Tensor{f("b.time_maa_k", F16, 3), f("b.time_mix_k", F16, 3)}, ErrDuplicate, `"b.time_mix_k"`},
		{"same name after lower-casing", []*format.Tensor{f("B.x", F16, 3), f("b.x", F16, 3)}, ErrDuplicate, `"B.x"`},
		{"factor twice", []*format.Tensor{f("M.lora.0", F16, 3, 1), f("m.lora.0", F16, 3, 1)}, ErrDuplicate, `"M.lora.0"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(source(c.tensors...))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("%q does not mention %s", err, c.mention)
			}
		})
	}
}

// A merge's work stops once its context is done: reading a changed tensor
// fails with the context's error, naming the tensor; unchanged ones read.
func TestMergeCancelled(t *testing.T) {
	base := source(
		tensor(t, "emb.weight", F32, []int64{2, 2}, make([]float32, 4)),
		tensor(t, "blocks.0.att.r_k", F32, []int64{1, 2}, make([]float32, 2)),
		tensor(t, "blocks.0.att.w1", F32, []int64{2, 3}, make([]float32, 6)))
	a := mustOpen(t, tensor(t, "blocks.0.att.w1", F32, []int64{2, 3}, seq(6, 1, 1)))
	ctx, cancel := context.WithCancel(context.Background())
	m, err := Merge(ctx, base, []Blend{{Adapter: a, Alpha: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := m.Lookup("blocks.0.att.w1").Bytes(); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "blocks.0.att.w1") {
		t.Errorf("changed tensor after cancel: %v", err)
	}
	if _, err := m.Lookup("emb.weight").Bytes(); err != nil {
		t.Errorf("unchanged tensor after cancel: %v", err)
	}
}
