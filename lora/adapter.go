package lora

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rwkvkit/rwkvkit/format"
)

// Errors that callers may need to tell apart. Every error about one tensor
// wraps one of them and names the tensor.
var (
	ErrEmpty     = errors.New("adapter has no tensors")
	ErrUnpaired  = errors.New("low-rank factor without its partner")
	ErrDuplicate = errors.New("two tensors with the same web-rwkv name")
	ErrNaming    = errors.New("mixes RWKV-LM (lora_A/lora_B) and web-rwkv (lora.0/lora.1) names")
	ErrRank      = errors.New("ranks of the low-rank factors disagree")
	ErrShape     = errors.New("shape does not match the base tensor")
	ErrDType     = errors.New("unsupported dtype")
	ErrNoTarget  = errors.New("no tensor of that name in the base model")
	ErrEmbedding = errors.New("emb.weight is never merged")
)

// Naming is how an adapter names and orients its tensors.
type Naming int

const (
	// NamingUnknown: the adapter has full tensors only, none of whose names
	// tells the layout; they are taken to be in the base model's layout.
	NamingUnknown Naming = iota
	// NamingRWKVLM: pairs named lora_A [r, in] and lora_B [out, r]; full
	// tensors named and oriented as in an RWKV-LM checkpoint.
	NamingRWKVLM
	// NamingWebRWKV: pairs named lora.0 [in, r] and lora.1 [out, r]; full
	// tensors named and oriented as in web-rwkv's converted files.
	NamingWebRWKV
)

func (n Naming) String() string {
	switch n {
	case NamingRWKVLM:
		return "RWKV-LM"
	case NamingWebRWKV:
		return "web-rwkv"
	}
	return "unknown"
}

// An Adapter is a LoRA file, checked and indexed, its tensors still unread.
// It reads from the source given to [Open], which must stay open while
// anything merged from it is read.
type Adapter struct {
	// Naming is detected by Open. A caller who knows better may set it
	// before Merge; it decides the orientation of full tensors whose
	// web-rwkv name is transposed by the converter.
	Naming Naming

	// Entries lists the updates in the file's order.
	Entries []Entry
}

// An Entry is one update of an adapter: a low-rank pair or a full tensor.
type Entry struct {
	// Name is the web-rwkv name of what is updated: for a pair, the module
	// without ".weight" ("blocks.3.att.key"); for a full tensor, the
	// tensor's own name ("blocks.3.att.time_mix_k").
	Name string
	// Rank is the rank of a pair, or 0 for a full tensor.
	Rank int
	// Shape is the update's shape: [out, in] for a pair, the tensor's
	// shape as stored for a full tensor.
	Shape []int64

	a, b      *format.Tensor // pair: A and B as stored
	aStoredRI bool           // A is stored [r, in] (lora_A), not [in, r]
	full      *format.Tensor
	swap      bool // the full tensor's name is one the converter transposes
}

// Tensors returns the names, as stored in the file, of the tensors that
// make up e.
func (e *Entry) Tensors() []string {
	if e.full != nil {
		return []string{e.full.Name}
	}
	return []string{e.a.Name, e.b.Name}
}

func (e *Entry) label() string {
	if e.full != nil {
		return fmt.Sprintf("tensor %q", e.full.Name)
	}
	return fmt.Sprintf("tensors %q and %q", e.a.Name, e.b.Name)
}

// Pair suffixes, as stored and after web-rwkv's renaming.
var suffixes = []struct {
	stored string
	b      bool // the B factor (lora_B, lora.1)
	rwkvLM bool
}{
	{".lora_A", false, true},
	{".lora_B", true, true},
	{".lora.0", false, false},
	{".lora.1", true, false},
}

// Open indexes and checks the adapter in src: every factor paired, ranks in
// agreement, floating-point dtypes, no two tensors that web-rwkv would name
// alike. It reads no tensor data. Whether the adapter fits a model is
// checked by [Merge].
func Open(src *format.Source) (*Adapter, error) {
	if len(src.Tensors) == 0 {
		return nil, fmt.Errorf("lora: %w", ErrEmpty)
	}
	type pair struct{ a, b *format.Tensor }
	pairs := map[string]*pair{}
	var order []string // pair modules and full names, in file order
	fulls := map[string]*format.Tensor{}
	var sawLM, sawWeb *format.Tensor
	for _, t := range src.Tensors {
		if !t.DType.Float() {
			return nil, fmt.Errorf("lora: tensor %q: %w %v (want F16, BF16, F32 or F64)", t.Name, ErrDType, t.DType)
		}
		var module string
		var isB, paired bool
		for _, s := range suffixes {
			if m, ok := strings.CutSuffix(t.Name, s.stored); ok {
				module, isB, paired = m, s.b, true
				if s.rwkvLM {
					sawLM = t
				} else {
					sawWeb = t
				}
				break
			}
		}
		if !paired {
			name, _ := format.WebRWKVName(t.Name)
			if prev := fulls[name]; prev != nil {
				return nil, fmt.Errorf("lora: tensors %q and %q: %w %q", prev.Name, t.Name, ErrDuplicate, name)
			}
			fulls[name] = t
			order = append(order, "\x00"+name)
			continue
		}
		module, _ = format.WebRWKVName(module)
		p := pairs[module]
		if p == nil {
			p = &pair{}
			pairs[module] = p
			order = append(order, module)
		}
		slot := &p.a
		if isB {
			slot = &p.b
		}
		if *slot != nil {
			return nil, fmt.Errorf("lora: tensors %q and %q: %w", (*slot).Name, t.Name, ErrDuplicate)
		}
		*slot = t
	}
	a := &Adapter{}
	switch {
	case sawLM != nil && sawWeb != nil:
		return nil, fmt.Errorf("lora: tensors %q and %q: %w", sawLM.Name, sawWeb.Name, ErrNaming)
	case sawLM != nil:
		a.Naming = NamingRWKVLM
	case sawWeb != nil:
		a.Naming = NamingWebRWKV
	default:
		a.Naming = namingOfFulls(src)
	}
	for _, key := range order {
		if name, ok := strings.CutPrefix(key, "\x00"); ok {
			t := fulls[name]
			_, swap := format.WebRWKVName(t.Name)
			a.Entries = append(a.Entries, Entry{Name: name, Shape: slices.Clone(t.Shape), full: t, swap: swap})
			continue
		}
		e, err := pairEntry(key, pairs[key].a, pairs[key].b)
		if err != nil {
			return nil, err
		}
		a.Entries = append(a.Entries, e)
	}
	return a, nil
}

// namingOfFulls tells the layout of an adapter of full tensors by the names
// only RWKV-LM uses; with none of them the layout is unknown.
func namingOfFulls(src *format.Source) Naming {
	for _, t := range src.Tensors {
		if strings.Contains(t.Name, "time_maa") || strings.Contains(t.Name, "time_faaaa") {
			return NamingRWKVLM
		}
	}
	return NamingUnknown
}

// pairEntry checks a low-rank pair and describes it.
func pairEntry(module string, a, b *format.Tensor) (Entry, error) {
	if a == nil || b == nil {
		t := a
		if t == nil {
			t = b
		}
		return Entry{}, fmt.Errorf("lora: tensor %q: %w", t.Name, ErrUnpaired)
	}
	e := Entry{Name: module, a: a, b: b, aStoredRI: strings.HasSuffix(a.Name, ".lora_A")}
	if len(a.Shape) != 2 || len(b.Shape) != 2 {
		return Entry{}, fmt.Errorf("lora: %s: %w: factors must be matrices, have shapes %v and %v", e.label(), ErrShape, a.Shape, b.Shape)
	}
	in, rank := a.Shape[0], a.Shape[1]
	if e.aStoredRI {
		rank, in = a.Shape[0], a.Shape[1]
	}
	if b.Shape[1] != rank {
		return Entry{}, fmt.Errorf("lora: %s: %w: A %v has rank %d, B %v has rank %d", e.label(), ErrRank, a.Shape, rank, b.Shape, b.Shape[1])
	}
	if rank == 0 {
		return Entry{}, fmt.Errorf("lora: %s: %w: rank 0", e.label(), ErrRank)
	}
	e.Rank = int(rank)
	e.Shape = []int64{b.Shape[0], in}
	return e, nil
}
