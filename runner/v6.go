package runner

import (
	"fmt"
	"math"

	"github.com/rwkvkit/rwkvkit/engine"
)

// timeMix6 is RWKV-6's time mixing: the v5 memory with a token shift and a
// decay that depend on the input through low-rank matrices.
type timeMix6 struct {
	projections
	wg                                 matrix
	lnx                                norm
	maaX, maaW, maaK, maaV, maaR, maaG []float32
	maaW1                              matrix    // [5D, C]
	maaW2                              [5]matrix // each [C, D]
	decayW1, decayW2                   matrix    // [Dd, C], [C, Dd]
	decay, first                       []float32
}

func (at *timeMix6) matrices() []matrix {
	return append([]matrix{at.wr, at.wk, at.wv, at.wo, at.wg, at.maaW1, at.decayW1, at.decayW2}, at.maaW2[:]...)
}

func (l *loader) timeMix6(att string) *timeMix6 {
	C, H := l.info.Embed, l.info.Heads
	a := &timeMix6{projections: l.projections(att)}
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
	return a
}

// loadMaaW2 splits v6's [5, C, D] mix matrix into its five [C, D] parts.
func (l *loader) loadMaaW2(a *timeMix6, name string, C, D int) {
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
	all, err := l.matrix(t, 5*C, D)
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

// mix computes RWKV-6's time mixing (docs/rwkv-math.md, v6): a token shift
// and a decay that depend on the input through low-rank matrices, then the
// v5 recurrence with that per-token decay.
func (at *timeMix6) mix(d dims, xa []float32, p *pass, l int, a *arena, vFirst []float32) []float32 {
	C, H, N, T := d.C, d.H, d.N, p.T
	shift := p.of(func(s *engine.Snapshot) []float32 { return s.AttShift(l) })
	D5 := rowsOf(at.maaW1)
	D := D5 / 5
	sx := a.get(T * C) // prev − x
	xxx := a.get(T * C)
	for t := range T {
		pv, x := p.prev(xa, shift, t, C), xa[t*C:(t+1)*C]
		d, q := sx[t*C:(t+1)*C], xxx[t*C:(t+1)*C]
		for c := range C {
			d[c] = pv[c] - x[c]
			q[c] = x[c] + d[c]*at.maaX[c]
		}
	}
	hid := a.get(T * D5)
	run(product{m: at.maaW1, x: xxx, ldx: C, out: hid, ldo: D5, T: T})
	for i, v := range hid {
		hid[i] = tanh32(v)
	}
	var mf [5][]float32 // w, k, v, r, g
	ps := make([]product, 5)
	for f := range mf {
		mf[f] = a.get(T * C)
		ps[f] = product{m: at.maaW2[f], x: hid[f*D:], ldx: D5, out: mf[f], ldo: C, T: T}
	}
	run(ps...)
	maa := [5][]float32{at.maaW, at.maaK, at.maaV, at.maaR, at.maaG}
	for f := range mf {
		for t := range T {
			x, d, o := xa[t*C:(t+1)*C], sx[t*C:(t+1)*C], mf[f][t*C:(t+1)*C]
			for c := range C {
				o[c] = x[c] + d[c]*(maa[f][c]+o[c])
			}
		}
	}
	xw, xk, xv, xr, xg := mf[0], mf[1], mf[2], mf[3], mf[4]

	Dd := rowsOf(at.decayW1)
	k, v, r, g := a.get(T*C), a.get(T*C), a.get(T*C), a.get(T*C)
	dh := a.get(T * Dd)
	run(product{m: at.wk, x: xk, ldx: C, out: k, ldo: C, T: T},
		product{m: at.wv, x: xv, ldx: C, out: v, ldo: C, T: T},
		product{m: at.wr, x: xr, ldx: C, out: r, ldo: C, T: T},
		product{m: at.wg, x: xg, ldx: C, out: g, ldo: C, T: T},
		product{m: at.decayW1, x: xw, ldx: C, out: dh, ldo: Dd, T: T})
	for i, v := range dh {
		dh[i] = tanh32(v)
	}
	w := a.get(T * C)
	run(product{m: at.decayW2, x: dh, ldx: Dd, out: w, ldo: C, T: T})
	forRows(T, C, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			wt := w[t*C : (t+1)*C]
			for c := range C {
				wt[c] = float32(math.Exp(-math.Exp(float64(at.decay[c] + wt[c]))))
			}
		}
	})

	y := a.zeros(T * C)
	wkv5(y, r, k, v, w, nil, at.first, p, p.of(func(s *engine.Snapshot) []float32 { return s.Mem(l) }), H, N)
	groupNorm(y, at.lnx, T, H, N)
	silus(g, T, C)
	for i := range y {
		y[i] *= g[i]
	}
	out := a.get(T * C)
	run(product{m: at.wo, x: y, ldx: C, out: out, ldo: C, T: T})
	return out
}
