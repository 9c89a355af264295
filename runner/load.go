package runner

import (
	"context"
	"fmt"
	"math"

	"github.com/rwkvkit/rwkvkit/format"
)

// loader reads tensors of a source in web-rwkv naming, keeping the first error.
type loader struct {
	ctx  context.Context
	src  *format.Source
	info format.ModelInfo
	err  error
}

func (l *loader) fail(name string, err error) {
	if l.err == nil {
		l.err = fmt.Errorf("runner: tensor %q: %w", name, err)
	}
}

func (l *loader) tensor(name string) *format.Tensor {
	if l.err != nil {
		return nil
	}
	if err := l.ctx.Err(); err != nil {
		l.err = fmt.Errorf("runner: %w", err)
		return nil
	}
	t := l.src.Lookup(name)
	if t == nil {
		l.err = fmt.Errorf("runner: %w %q", ErrMissingTensor, name)
	}
	return t
}

// vec reads a floating-point tensor of n elements (any shape, such as
// (1, 1, C) or (H, N)) as float32.
func (l *loader) vec(name string, n int) []float32 {
	t := l.tensor(name)
	if t == nil {
		return nil
	}
	if t.Len() != int64(n) {
		l.fail(name, fmt.Errorf("%w: %v, want %d elements", ErrShape, t.Shape, n))
		return nil
	}
	v, err := t.Float32()
	if err != nil {
		l.fail(name, err)
		return nil
	}
	return v
}

func (l *loader) norm(prefix string, n int) norm {
	return norm{l.vec(prefix+".weight", n), l.vec(prefix+".bias", n)}
}

// mat reads a [rows, cols] matrix; rows < 0 accepts any number of rows.
func (l *loader) mat(name string, rows, cols int) matrix {
	t := l.tensor(name)
	if t == nil {
		return nil
	}
	if len(t.Shape) != 2 || (rows >= 0 && t.Shape[0] != int64(rows)) || t.Shape[1] != int64(cols) || t.Shape[0] <= 0 || cols <= 0 {
		want := fmt.Sprintf("[%d %d]", rows, cols)
		if rows < 0 {
			want = fmt.Sprintf("[D %d]", cols)
		}
		l.fail(name, fmt.Errorf("%w: %v, want %s", ErrShape, t.Shape, want))
		return nil
	}
	m, err := newMatrix(t, int(t.Shape[0]), cols)
	if err != nil {
		l.fail(name, err)
		return nil
	}
	return m
}

// rowsOf returns the number of rows of m (0 for nil).
func rowsOf(m matrix) int {
	if m == nil {
		return 0
	}
	r, _ := m.dims()
	return r
}

func (l *loader) layer(ly *layer, i int) {
	C, F := l.info.Embed, l.info.FFN
	p := fmt.Sprintf("blocks.%d.", i)
	att, ffn := p+"att.", p+"ffn."
	ly.ln1 = l.norm(p+"ln1", C)
	ly.ln2 = l.norm(p+"ln2", C)
	a := &ly.att
	a.wr = l.mat(att+"receptance.weight", C, C)
	a.wk = l.mat(att+"key.weight", C, C)
	a.wv = l.mat(att+"value.weight", C, C)
	a.wo = l.mat(att+"output.weight", C, C)
	f := &ly.ffn
	f.wk = l.mat(ffn+"key.weight", F, C)
	f.wv = l.mat(ffn+"value.weight", C, F)
	if l.info.Version != format.V7 {
		f.wr = l.mat(ffn+"receptance.weight", C, C)
		f.mixK = l.vec(ffn+"time_mix_k", C)
		f.mixR = l.vec(ffn+"time_mix_r", C)
	}
	switch l.info.Version {
	case format.V4:
		a.mixK = l.vec(att+"time_mix_k", C)
		a.mixV = l.vec(att+"time_mix_v", C)
		a.mixR = l.vec(att+"time_mix_r", C)
		a.decay = mapVec(l.vec(att+"time_decay", C), func(x float64) float64 { return -math.Exp(x) })
		a.first = l.vec(att+"time_first", C)
	case format.V5_0, format.V5_1, format.V5_2:
		l.loadV5(a, att)
	case format.V6:
		l.loadV6(a, att)
	case format.V7:
		l.loadV7(a, att, i)
		f.mixK = l.vec(ffn+"x_k", C)
	}
}

func (l *loader) loadV5(a *timeMix, att string) {
	C, H := l.info.Embed, l.info.Heads
	v := l.info.Version
	a.mixK = l.vec(att+"time_mix_k", C)
	a.mixV = l.vec(att+"time_mix_v", C)
	a.mixR = l.vec(att+"time_mix_r", C)
	a.lnx = l.norm(att+"ln_x", C)
	if v != format.V5_0 {
		a.mixG = l.vec(att+"time_mix_g", C)
		a.wg = l.mat(att+"gate.weight", C, C)
	}
	a.decay = mapVec(l.perChannel(att+"time_decay", C, H), func(x float64) float64 { return math.Exp(-math.Exp(x)) })
	a.first = l.perChannel(att+"time_first", C, H)
	if v == format.V5_0 {
		// The ungated v5 keeps its bonus as a log (rwkv.cpp, ChatRWKV "5");
		// the gated ones use it as it is, as web-rwkv does.
		a.first = mapVec(a.first, math.Exp)
	}
}

// perChannel reads a per-head (H) or per-channel (C) vector and returns
// it per channel, repeating each head's value over its channels.
func (l *loader) perChannel(name string, C, H int) []float32 {
	t := l.tensor(name)
	if t == nil {
		return nil
	}
	n := C
	if t.Len() == int64(H) {
		n = H
	}
	v := l.vec(name, n)
	if v == nil || n == C {
		return v
	}
	out := make([]float32, C)
	for c := range out {
		out[c] = v[c/(C/H)]
	}
	return out
}

func (l *loader) loadV6(a *timeMix, att string) {
	C, H := l.info.Embed, l.info.Heads
	a.maaX = l.vec(att+"time_mix_x", C)
	a.maaW = l.vec(att+"time_mix_w", C)
	a.maaK = l.vec(att+"time_mix_k", C)
	a.maaV = l.vec(att+"time_mix_v", C)
	a.maaR = l.vec(att+"time_mix_r", C)
	a.maaG = l.vec(att+"time_mix_g", C)
	a.maaW1 = l.mat(att+"time_mix_w1", -1, C)
	D5 := rowsOf(a.maaW1)
	if l.err == nil && D5%5 != 0 {
		l.fail(att+"time_mix_w1", fmt.Errorf("%w: %d rows are not 5 low-rank blocks", ErrShape, D5))
	}
	l.loadMaaW2(a, att+"time_mix_w2", C, D5/5)
	a.decay = l.vec(att+"time_decay", C)
	a.decayW1 = l.mat(att+"time_decay_w1", -1, C)
	a.decayW2 = l.mat(att+"time_decay_w2", C, rowsOf(a.decayW1))
	a.first = l.perChannel(att+"time_first", C, H)
	a.wg = l.mat(att+"gate.weight", C, C)
	a.lnx = l.norm(att+"ln_x", C)
}

// loadMaaW2 splits v6's [5, C, D] mix matrix into its five [C, D] parts.
func (l *loader) loadMaaW2(a *timeMix, name string, C, D int) {
	t := l.tensor(name)
	if t == nil {
		return
	}
	if len(t.Shape) != 3 || t.Shape[0] != 5 || t.Shape[1] != int64(C) || t.Shape[2] != int64(D) || D == 0 {
		l.fail(name, fmt.Errorf("%w: %v, want [5 %d %d]", ErrShape, t.Shape, C, D))
		return
	}
	if !t.DType.Float() {
		l.fail(name, fmt.Errorf("%w: %v (a low-rank matrix must be floating point)", errDType, t.DType))
		return
	}
	all, err := newMatrix(t, 5*C, D)
	if err != nil {
		l.fail(name, err)
		return
	}
	for f := range 5 {
		a.maaW2[f] = subRows(all, f*C, (f+1)*C)
	}
}

// subRows returns rows [r0, r1) of a dense matrix, sharing its storage.
func subRows(m matrix, r0, r1 int) matrix {
	switch d := m.(type) {
	case *denseF32:
		return &denseF32{r1 - r0, d.cols, d.w[r0*d.cols : r1*d.cols]}
	case *dense16:
		return &dense16{r1 - r0, d.cols, d.w[r0*d.cols : r1*d.cols], d.bf}
	}
	panic("runner: subRows of a quantized matrix")
}

func (l *loader) loadV7(a *timeMix, att string, i int) {
	C := l.info.Embed
	a.xr = l.vec(att+"x_r", C)
	a.xw = l.vec(att+"x_w", C)
	a.xk = l.vec(att+"x_k", C)
	a.xv = l.vec(att+"x_v", C)
	a.xa = l.vec(att+"x_a", C)
	a.xg = l.vec(att+"x_g", C)
	a.w0 = l.vec(att+"w0", C)
	a.a0 = l.vec(att+"a0", C)
	a.kk = l.vec(att+"k_k", C)
	a.ka = l.vec(att+"k_a", C)
	a.rk = l.vec(att+"r_k", C)
	a.w1 = l.mat(att+"w1", -1, C)
	a.w2 = l.mat(att+"w2", C, rowsOf(a.w1))
	a.a1 = l.mat(att+"a1", -1, C)
	a.a2 = l.mat(att+"a2", C, rowsOf(a.a1))
	a.g1 = l.mat(att+"g1", -1, C)
	a.g2 = l.mat(att+"g2", C, rowsOf(a.g1))
	if i > 0 { // layer 0 takes its value as it is; it may carry unused v0–v2
		a.v0 = l.vec(att+"v0", C)
		a.v1 = l.mat(att+"v1", -1, C)
		a.v2 = l.mat(att+"v2", C, rowsOf(a.v1))
	}
	a.lnx = l.norm(att+"ln_x", C)
}

// mapVec applies f to each element in float64.
func mapVec(v []float32, f func(float64) float64) []float32 {
	for i, x := range v {
		v[i] = float32(f(float64(x)))
	}
	return v
}
