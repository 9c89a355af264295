package runner

import (
	"math"

	"github.com/rwkvkit/rwkvkit/engine"
)

// timeMix6 is RWKV-6's time mixing (docs/rwkv-math.md, v6): a token shift
// and a decay that depend on the input through low-rank matrices, then the
// v5 recurrence with that per-token decay.
func (m *Model) timeMix6(ly *layer, xa []float32, p *pass, l int, a *arena) []float32 {
	C, H, N, T := m.info.Embed, m.info.Heads, m.info.HeadSize, p.T
	at := &ly.att
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
