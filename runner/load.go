package runner

import (
	"context"
	"fmt"
	"sync"

	"github.com/rwkvkit/rwkvkit/format"
)

// loader reads tensors of a source in web-rwkv naming, keeping the first error.
type loader struct {
	ctx    context.Context
	src    *format.Source
	info   format.ModelInfo
	shared *shared
	err    error
}

// shared holds what the loaders of one model made of each region of the
// file (format.Tensor.Region), so that tensors reading the same bytes, such
// as tied embedding and head or layers that share tensors, are kept once:
// a model holds its file's distinct weights, not one copy per name. Its
// values are read-only once made, as all of a Model's weights are.
type shared struct {
	mu   sync.Mutex
	made map[sharedKey]*sharedValue
}

// A sharedKey is a region read as one thing: the same bytes, dtype and
// shape, made into a vector or a matrix of the same dimensions.
type sharedKey struct {
	region     string
	dtype      format.DType
	shape      string
	kind       byte // 'v' vector, 'm' matrix
	rows, cols int
}

type sharedValue struct {
	done chan struct{} // closed once v and err are set
	v    any
	err  error
}

// once returns build's result for t read as kind with the given
// dimensions, calling build only for the first tensor of its region; the
// others wait for it. A tensor without a region is built on its own, and
// so is one whose first build failed, so that its error is its own.
func once[T any](s *shared, t *format.Tensor, kind byte, rows, cols int, build func() (T, error)) (T, error) {
	if t.Region == "" {
		return build()
	}
	k := sharedKey{t.Region, t.DType, fmt.Sprint(t.Shape), kind, rows, cols}
	s.mu.Lock()
	if s.made == nil {
		s.made = map[sharedKey]*sharedValue{}
	}
	e, ok := s.made[k]
	if !ok {
		e = &sharedValue{done: make(chan struct{})}
		s.made[k] = e
	}
	s.mu.Unlock()
	if !ok {
		defer close(e.done)
		v, err := build()
		e.v, e.err = v, err
		return v, err
	}
	<-e.done
	if e.err != nil {
		return build()
	}
	return e.v.(T), nil
}

func (l *loader) fail(name string, err error) {
	if l.err == nil {
		l.err = fmt.Errorf("runner: %w", format.TensorErr(name, err))
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
	v, err := once(l.shared, t, 'v', n, 0, t.Float32)
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
	m, err := l.matrix(t, int(t.Shape[0]), cols)
	if err != nil {
		l.fail(name, err)
		return nil
	}
	return m
}

// matrix keeps t's bytes as a [rows, cols] matrix (newMatrix), once per region.
func (l *loader) matrix(t *format.Tensor, rows, cols int) (matrix, error) {
	return once(l.shared, t, 'm', rows, cols, func() (matrix, error) { return newMatrix(t, rows, cols) })
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
	switch l.info.Version {
	case format.V4:
		ly.att = l.timeMix4(att)
	case format.V5_0, format.V5_1, format.V5_2:
		ly.att = l.timeMix5(att)
	case format.V6:
		ly.att = l.timeMix6(att)
	case format.V7:
		ly.att = l.timeMix7(att, i)
	}
	f := &ly.ffn
	f.wk = l.mat(ffn+"key.weight", F, C)
	f.wv = l.mat(ffn+"value.weight", C, F)
	if l.info.Version == format.V7 {
		f.mixK = l.vec(ffn+"x_k", C)
		return
	}
	f.lerp = l.info.Version != format.V6
	f.wr = l.mat(ffn+"receptance.weight", C, C)
	f.mixK = l.vec(ffn+"time_mix_k", C)
	f.mixR = l.vec(ffn+"time_mix_r", C)
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

// projections are the four square matrices every version's time mixing
// has: receptance, key, value and output.
type projections struct{ wr, wk, wv, wo matrix }

func (l *loader) projections(att string) projections {
	C := l.info.Embed
	return projections{
		wr: l.mat(att+"receptance.weight", C, C),
		wk: l.mat(att+"key.weight", C, C),
		wv: l.mat(att+"value.weight", C, C),
		wo: l.mat(att+"output.weight", C, C),
	}
}

// mapVec returns f of each element, computed in float64, in a new slice:
// v may be shared.
func mapVec(v []float32, f func(float64) float64) []float32 {
	if v == nil {
		return nil
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(f(float64(x)))
	}
	return out
}
