package lora

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/rwkvkit/rwkvkit/format"
)

// A Pattern sets the alpha of the base tensors whose web-rwkv name the
// regular expression matches anywhere (as web-rwkv's blend patterns do).
type Pattern struct {
	Regexp *regexp.Regexp
	Alpha  float32
}

// A Blend is an adapter with the strength it is merged at.
type Blend struct {
	Adapter *Adapter
	// Alpha is the strength for tensors no pattern matches. It is used as
	// given: the zero value 0 leaves the model as it is (1 is the usual
	// choice).
	Alpha float32
	// Patterns override Alpha per tensor; the last pattern that matches a
	// tensor's web-rwkv name wins.
	Patterns []Pattern
}

// AlphaFor returns the alpha that b applies to the base tensor whose
// web-rwkv name is name.
func (b *Blend) AlphaFor(name string) float32 {
	alpha := b.Alpha
	for _, p := range b.Patterns {
		if p.Regexp.MatchString(name) {
			alpha = p.Alpha
		}
	}
	return alpha
}

// Options tune Merge. A nil *Options means the defaults.
type Options struct {
	// Backend computes the low-rank products; nil means [CPU].
	Backend Backend
}

// A Backend computes the low-rank part of a merge. [CPU] is the reference;
// [NewGPU] returns one that runs on a GPU.
type Backend interface {
	// AddLowRank sets w[i·cols+j] += s·Σₖ p[i·r+k]·q[j·r+k] for every i <
	// rows, j < cols; len(w) = rows·cols, len(p) = rows·r, len(q) = cols·r.
	AddLowRank(w []float32, rows, cols, r int, p, q []float32, s float32) error
}

// A change is one update of one base tensor.
type change struct {
	entry *Entry
	alpha float32
	// transpose: the base stores the tensor with its last two dimensions
	// swapped relative to the update.
	transpose bool
	matrix    bool // full tensor: added (matrix) or interpolated (vector)
}

// Merge returns base with the blends applied in order. It first checks that
// every entry of every adapter names a tensor of base, with a shape that
// fits, a dtype that can be merged into (F32, F16, BF16) and that it is not
// emb.weight; the first problem is returned, naming the tensor.
//
// The result is lazy: a changed tensor is computed when opened (reading the
// base tensor, the adapters' tensors for it, and holding one float32 copy of
// it); the others are base's own tensors. Changes with alpha 0 are skipped,
// so a tensor only they touch keeps its bytes. Closing the result closes
// base; the adapters' sources stay open until their owner closes them.
//
// ctx governs the merge work, which happens as the result's tensors are
// read: once ctx is done, computing a changed tensor stops with its error.
func Merge(ctx context.Context, base *format.Source, blends []Blend, opts *Options) (*format.Source, error) {
	if opts == nil {
		opts = &Options{}
	}
	dev := opts.Backend
	if dev == nil {
		dev = CPU{}
	}
	baseLM := false
	if info, err := format.Detect(base); err == nil {
		baseLM = info.Layout == format.LayoutRWKVLM
	} else if !errors.Is(err, format.ErrNotModel) {
		return nil, fmt.Errorf("lora: base model: %w", err)
	}
	index := make(map[string]int, len(base.Tensors))
	for i, t := range base.Tensors {
		name, _ := format.WebRWKVName(t.Name)
		if j, ok := index[name]; ok {
			return nil, fmt.Errorf("lora: base tensors %q and %q: %w %q", base.Tensors[j].Name, t.Name, ErrDuplicate, name)
		}
		index[name] = i
	}
	changes := make([][]change, len(base.Tensors))
	for bi := range blends {
		b := &blends[bi]
		if b.Adapter == nil {
			return nil, fmt.Errorf("lora: blend %d has no adapter", bi)
		}
		for ei := range b.Adapter.Entries {
			e := &b.Adapter.Entries[ei]
			i, c, err := resolve(base, index, e, b.Adapter.Naming, baseLM)
			if err != nil {
				return nil, err
			}
			name, _ := format.WebRWKVName(base.Tensors[i].Name)
			c.alpha = b.AlphaFor(name)
			if c.alpha != 0 {
				changes[i] = append(changes[i], c)
			}
		}
	}
	out := base.Derive()
	for i, t := range base.Tensors {
		if len(changes[i]) == 0 {
			out.Tensors = append(out.Tensors, t)
			continue
		}
		m := &merged{ctx: ctx, base: t, changes: changes[i], dev: dev}
		nt, err := format.NewTensor(t.Name, t.DType, t.Shape, m.open)
		if err != nil {
			return nil, err
		}
		out.Tensors = append(out.Tensors, nt)
	}
	return out, nil
}

// resolve finds the base tensor that e updates and checks that e fits it.
func resolve(base *format.Source, index map[string]int, e *Entry, naming Naming, baseLM bool) (int, change, error) {
	c := change{entry: e}
	i, ok := -1, false
	if e.full != nil {
		i, ok = index[e.Name]
	} else if i, ok = index[e.Name+".weight"]; !ok {
		// web-rwkv looks a module's pair up by the tensor's name without
		// its ".weight"; v7's w1, a1, … have none.
		i, ok = index[e.Name]
	}
	if !ok {
		return 0, c, fmt.Errorf("lora: %s: %w (looked for %q)", e.label(), ErrNoTarget, target(e))
	}
	t := base.Tensors[i]
	name, swap := format.WebRWKVName(t.Name)
	if name == "emb.weight" {
		return 0, c, fmt.Errorf("lora: %s: %w", e.label(), ErrEmbedding)
	}
	switch t.DType {
	case format.F32, format.F16, format.BF16:
	default:
		hint := ""
		if t.DType.Quantized() {
			hint = " (merge before quantizing)"
		}
		return 0, c, fmt.Errorf("lora: %s: base tensor %q is %v: %w%s", e.label(), t.Name, t.DType, ErrDType, hint)
	}
	shape := t.Shape // the base tensor in the update's orientation
	if e.full == nil {
		// A pair's update is in web-rwkv's orientation, whatever the
		// adapter's naming: the converter transposes lora_A into lora.0
		// and nothing else, so B·Aᵀ is the same matrix in both.
		c.transpose = baseLM && swap
	} else {
		updLM := naming == NamingRWKVLM || (naming == NamingUnknown && baseLM)
		c.transpose = swap && updLM != baseLM
		c.matrix = isMatrix(name, t.Shape)
	}
	if c.transpose && len(shape) >= 2 {
		shape = slices.Clone(shape)
		r := len(shape)
		shape[r-2], shape[r-1] = shape[r-1], shape[r-2]
	} else {
		c.transpose = false
	}
	fits := slices.Equal(shape, e.Shape)
	if e.full != nil && !c.matrix && !fits {
		// Vectors are read flat by web-rwkv, which only asks that the
		// sizes agree; [1, 1, C] and [C] are the same vector.
		fits = slices.Equal(squeeze(shape), squeeze(e.Shape))
	}
	if !fits {
		how := fmt.Sprintf("base tensor %q has shape %v", t.Name, t.Shape)
		if c.transpose {
			how += fmt.Sprintf(" (%v in web-rwkv's layout)", shape)
		}
		return 0, c, fmt.Errorf("lora: %s: %w: update has shape %v, %s", e.label(), ErrShape, e.Shape, how)
	}
	return i, c, nil
}

func target(e *Entry) string {
	if e.full != nil {
		return e.Name
	}
	return e.Name + ".weight"
}

func squeeze(shape []int64) []int64 {
	var s []int64
	for _, d := range shape {
		if d != 1 {
			s = append(s, d)
		}
	}
	return s
}

// lowRankMatrices are the parameters, other than Linear weights, that
// web-rwkv loads as matrices (so a full tensor is added to them): v6's
// token-shift and decay projections, v7's decay, learning-rate, gate and
// value projections and r_k.
var lowRankMatrices = []string{
	"time_mix_w1", "time_mix_w2", "time_decay_w1", "time_decay_w2",
	"w1", "w2", "a1", "a2", "g1", "g2", "v1", "v2", "r_k",
}

// isMatrix reports whether web-rwkv loads the tensor named name (web-rwkv
// name) as a matrix rather than as a vector.
func isMatrix(name string, shape []int64) bool {
	if strings.HasSuffix(name, ".weight") {
		return len(squeeze(shape)) >= 2
	}
	last := name[strings.LastIndexByte(name, '.')+1:]
	return slices.Contains(lowRankMatrices, last)
}

// merged computes one changed tensor.
type merged struct {
	ctx     context.Context
	base    *format.Tensor
	changes []change
	dev     Backend
}

func (m *merged) open() (io.ReadCloser, error) {
	if err := m.ctx.Err(); err != nil {
		return nil, fmt.Errorf("lora: %w", format.TensorErr(m.base.Name, err))
	}
	b, err := m.base.Bytes()
	if err != nil {
		return nil, err
	}
	w := make([]float32, m.base.Len())
	es := m.base.DType.Size()
	var decodeErr error
	var once sync.Once
	parallel(len(w), func(lo, hi int) {
		if err := format.DecodeFloat32(w[lo:hi], b[lo*es:hi*es], m.base.DType); err != nil {
			once.Do(func() { decodeErr = err })
		}
	})
	if decodeErr != nil {
		return nil, fmt.Errorf("lora: %w", format.TensorErr(m.base.Name, decodeErr))
	}
	for _, c := range m.changes {
		if err := m.ctx.Err(); err != nil {
			return nil, fmt.Errorf("lora: %w", format.TensorErr(m.base.Name, err))
		}
		if err := c.apply(w, m.base.Shape, m.dev); err != nil {
			return nil, fmt.Errorf("lora: merging %s into %q: %w", c.entry.label(), m.base.Name, err)
		}
	}
	parallel(len(w), func(lo, hi int) { encode(b[lo*es:hi*es], w[lo:hi], m.base.DType) })
	return format.Computed(b), nil
}

// apply adds the change to w, the base tensor (of shape shape) in float32.
func (c *change) apply(w []float32, shape []int64, dev Backend) error {
	e := c.entry
	if e.full != nil {
		l, err := e.full.Float32()
		if err != nil {
			return err
		}
		if c.transpose {
			r := len(shape)
			// l is stored with the base's last two dimensions swapped.
			l = transposeLast2(l, int(shape[r-1]), int(shape[r-2]))
		}
		if c.matrix {
			addScaled(w, l, c.alpha)
		} else {
			interpolate(w, l, c.alpha)
		}
		return nil
	}
	a, err := e.a.Float32()
	if err != nil {
		return err
	}
	bf, err := e.b.Float32()
	if err != nil {
		return err
	}
	out, in, r := int(e.Shape[0]), int(e.Shape[1]), e.Rank
	if e.aStoredRI {
		a = transposeLast2(a, r, in) // [r, in] → [in, r]
	}
	s := c.alpha / float32(r)
	if c.transpose {
		// The base holds Wᵀ [in, out]: Wᵀ += s·A·Bᵀ.
		return dev.AddLowRank(w, in, out, r, a, bf, s)
	}
	return dev.AddLowRank(w, out, in, r, bf, a, s)
}
