package runner

import (
	"math"

	"github.com/rwkvkit/rwkvkit/engine"
)

// expHalf is e^(−0.5): v7's decay is exp(−e^(−0.5)·σ(·)), in (e^(−0.607), 1).
const expHalf = 0.6065306597126334

// timeMix7 is RWKV-7's time mixing: x + (prev−x)⊙x_f mixes, LoRA-style
// matrices ([out, in]) and the per-channel vectors of the generalised
// delta rule.
type timeMix7 struct {
	projections
	lnx                    norm
	xr, xw, xk, xv, xa, xg []float32
	w0, a0, v0, kk, ka, rk []float32
	w1, w2, a1, a2         matrix
	v1, v2, g1, g2         matrix
}

func (at *timeMix7) matrices() []matrix {
	return []matrix{at.wr, at.wk, at.wv, at.wo, at.w1, at.w2, at.a1, at.a2, at.v1, at.v2, at.g1, at.g2}
}

func (l *loader) timeMix7(att string, i int) *timeMix7 {
	C := l.info.Embed
	a := &timeMix7{projections: l.projections(att)}
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
	return a
}

// mix computes RWKV-7's time mixing (docs/rwkv-math.md, v7): the generalised
// delta rule with an in-context learning rate a, a value residual to layer
// 0's values (vFirst) and a low-rank gate.
func (at *timeMix7) mix(d dims, xa []float32, p *pass, l int, a *arena, vFirst []float32) []float32 {
	C, H, N, T := d.C, d.H, d.N, p.T
	shift := p.of(func(s *engine.Snapshot) []float32 { return s.AttShift(l) })
	mixes := [][]float32{at.xr, at.xw, at.xk, at.xv, at.xa, at.xg}
	var xs [6][]float32 // r, w, k, v, a, g
	for f := range xs {
		xs[f] = a.get(T * C)
		addShift(xs[f], xa, p, shift, mixes[f], C)
	}
	xr, xw, xk, xv, xA, xg := xs[0], xs[1], xs[2], xs[3], xs[4], xs[5]

	Dw, Da, Dg, Dv := rowsOf(at.w1), rowsOf(at.a1), rowsOf(at.g1), rowsOf(at.v1)
	r, k, v := a.get(T*C), a.get(T*C), a.get(T*C)
	hw, ha, hg := a.get(T*Dw), a.get(T*Da), a.get(T*Dg)
	ps := []product{
		{m: at.wr, x: xr, ldx: C, out: r, ldo: C, T: T},
		{m: at.wk, x: xk, ldx: C, out: k, ldo: C, T: T},
		{m: at.wv, x: xv, ldx: C, out: v, ldo: C, T: T},
		{m: at.w1, x: xw, ldx: C, out: hw, ldo: Dw, T: T},
		{m: at.a1, x: xA, ldx: C, out: ha, ldo: Da, T: T},
		{m: at.g1, x: xg, ldx: C, out: hg, ldo: Dg, T: T},
	}
	var hv []float32
	if l > 0 {
		hv = a.get(T * Dv)
		ps = append(ps, product{m: at.v1, x: xv, ldx: C, out: hv, ldo: Dv, T: T})
	}
	run(ps...)
	forRows(T, C, func(t0, t1 int) {
		for i := t0 * Dw; i < t1*Dw; i++ {
			hw[i] = tanh32(hw[i])
		}
		for i := t0 * Dg; i < t1*Dg; i++ {
			hg[i] = sigmoid(hg[i])
		}
	})
	w, aa, g := a.get(T*C), a.get(T*C), a.get(T*C)
	ps = append(ps[:0],
		product{m: at.w2, x: hw, ldx: Dw, out: w, ldo: C, T: T},
		product{m: at.a2, x: ha, ldx: Da, out: aa, ldo: C, T: T},
		product{m: at.g2, x: hg, ldx: Dg, out: g, ldo: C, T: T})
	var vg []float32
	if l > 0 {
		vg = a.get(T * C)
		ps = append(ps, product{m: at.v2, x: hv, ldx: Dv, out: vg, ldo: C, T: T})
	}
	run(ps...)

	nkk, kka := a.get(T*C), a.get(T*C)
	forRows(T, C, func(t0, t1 int) { at.prepare7(t0, t1, H, N, l, w, aa, k, v, nkk, kka, vg, vFirst) })

	y := a.get(T * C)
	wkv7(y, r, w, k, v, nkk, kka, p, p.of(func(s *engine.Snapshot) []float32 { return s.Mem(l) }), H, N)
	groupNorm(y, at.lnx, T, H, N)
	forRows(T, C, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			for h := range H {
				o := t*C + h*N
				var b float32
				for j := range N {
					b += r[o+j] * k[o+j] * at.rk[h*N+j]
				}
				for j := range N {
					y[o+j] = (y[o+j] + b*v[o+j]) * g[o+j]
				}
			}
		}
	})
	out := a.get(T * C)
	run(product{m: at.wo, x: y, ldx: C, out: out, ldo: C, T: T})
	return out
}

// prepare7 computes, for tokens [t0, t1), the decay, the learning rate,
// the normalised removal key kk (stored as −kk, which is what the state
// update multiplies by), kk⊙a, the key scaled by a and the value residual;
// layer 0 records its values in vFirst instead.
func (at *timeMix7) prepare7(t0, t1, H, N, l int, w, aa, k, v, nkk, kka, vg, vFirst []float32) {
	C := H * N
	lo, hi := t0*C, t1*C
	for o := lo; o < hi; o += C {
		add(w[o:o+C], at.w0)
		add(aa[o:o+C], at.a0)
		if l > 0 {
			add(vg[o:o+C], at.v0)
		}
	}
	sigmoidVec(w[lo:hi], w[lo:hi])
	for i := lo; i < hi; i++ {
		w[i] *= -expHalf
	}
	expVec(w[lo:hi], w[lo:hi])
	sigmoidVec(aa[lo:hi], aa[lo:hi])
	if l > 0 {
		sigmoidVec(vg[lo:hi], vg[lo:hi])
	}
	for o := lo; o < hi; o += C {
		for c := range C {
			nkk[o+c] = k[o+c] * at.kk[c]
		}
		for h := range H {
			q := nkk[o+h*N : o+(h+1)*N]
			var ss float64
			for _, x := range q {
				ss += float64(x) * float64(x)
			}
			inv := float32(1 / max(math.Sqrt(ss), 1e-12))
			for j := range q {
				q[j] *= inv
			}
		}
		for c := range C {
			i := o + c
			kka[i] = nkk[i] * aa[i]
			nkk[i] = -nkk[i]
			k[i] *= 1 + (aa[i]-1)*at.ka[c]
		}
	}
	if l == 0 {
		copy(vFirst[lo:hi], v[lo:hi])
		return
	}
	for i := lo; i < hi; i++ {
		v[i] += (vFirst[i] - v[i]) * vg[i]
	}
}

// wkv7 runs the v7 recurrence over the rows of each sequence of the pass on
// its memory mems[j], one head of one sequence per piece of parallel work.
// Per head, S is N×N indexed [value i][key j]:
//
//	S[i][j] ← S[i][j]·w_j + (Σ_l S[i][l]·(−kk_l))·kk_j·a_j + v_i·k_j;  y_i = Σ_j S[i][j]·r_j
func wkv7(y, r, w, k, v, nkk, kka []float32, p *pass, mems [][]float32, H, N int) {
	C := H * N
	forEach(len(mems)*H, func(i int) {
		j, h := i/H, i%H
		S := mems[j][h*N*N : (h+1)*N*N]
		t0, t1 := p.rows(j)
		for t := t0; t < t1; t++ {
			o := t*C + h*N
			wkv7Head(S, r[o:o+N], w[o:o+N], k[o:o+N], v[o:o+N], nkk[o:o+N], kka[o:o+N], y[o:o+N])
		}
	})
}

// wkv7HeadGo advances one head's state S (N×N) by one token and writes its
// output to y.
func wkv7HeadGo(S, r, w, k, v, nkk, kka, y []float32) {
	N := len(y)
	for i := range N {
		row := S[i*N : (i+1)*N]
		sa := dotGo(row, nkk)
		vi := v[i]
		var yi float32
		for j, sij := range row {
			x := sij*w[j] + sa*kka[j] + vi*k[j]
			row[j] = x
			yi += x * r[j]
		}
		y[i] = yi
	}
}
