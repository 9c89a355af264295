package runner

import (
	"math"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
)

// timeMix5 is the time mixing of the v5 family: heads with a matrix
// memory, an x⊙m + prev⊙(1−m) token shift, a group norm and (v5.1, v5.2)
// a SiLU gate. Their differences are settled at load, where decay and
// bonus become per-channel vectors.
type timeMix5 struct {
	projections
	wg                     matrix // nil for v5.0
	lnx                    norm
	mixK, mixV, mixR, mixG []float32
	decay, first           []float32 // decay factor exp(−exp(time_decay)) and bonus u, per channel
}

func (at *timeMix5) matrices() []matrix { return []matrix{at.wr, at.wk, at.wv, at.wo, at.wg} }

func (l *loader) timeMix5(att string) *timeMix5 {
	C, H := l.info.Embed, l.info.Heads
	a := &timeMix5{projections: l.projections(att)}
	a.mixK = l.vec(att+"time_mix_k", C)
	a.mixV = l.vec(att+"time_mix_v", C)
	a.mixR = l.vec(att+"time_mix_r", C)
	a.lnx = l.norm(att+"ln_x", C)
	gated := l.info.Version != format.V5_0
	if gated {
		a.mixG = l.vec(att+"time_mix_g", C)
		a.wg = l.mat(att+"gate.weight", C, C)
	}
	a.decay = mapVec(l.perChannel(att+"time_decay", C, H), func(x float64) float64 { return math.Exp(-math.Exp(x)) })
	a.first = l.perChannel(att+"time_first", C, H)
	if !gated {
		// The ungated v5 keeps its bonus as a log (rwkv.cpp, ChatRWKV "5");
		// the gated ones use it as it is, as web-rwkv does.
		a.first = mapVec(a.first, math.Exp)
	}
	return a
}

// mix computes the time mixing of v5.0, the gated per-head-decay v5.1 and
// v5.2 (docs/rwkv-math.md, v5 family); their differences were settled at
// load, where decay and bonus became per-channel vectors.
func (at *timeMix5) mix(d dims, xa []float32, p *pass, l int, a *arena, vFirst []float32) []float32 {
	C, H, N, T := d.C, d.H, d.N, p.T
	shift := p.of(func(s *engine.Snapshot) []float32 { return s.AttShift(l) })
	xk, xv, xr := a.get(T*C), a.get(T*C), a.get(T*C)
	lerpShift(xk, xa, p, shift, at.mixK, C)
	lerpShift(xv, xa, p, shift, at.mixV, C)
	lerpShift(xr, xa, p, shift, at.mixR, C)
	k, v, r := a.get(T*C), a.get(T*C), a.get(T*C)
	ps := []product{
		{m: at.wk, x: xk, ldx: C, out: k, ldo: C, T: T},
		{m: at.wv, x: xv, ldx: C, out: v, ldo: C, T: T},
		{m: at.wr, x: xr, ldx: C, out: r, ldo: C, T: T},
	}
	var g []float32
	if at.wg != nil {
		xg := a.get(T * C)
		lerpShift(xg, xa, p, shift, at.mixG, C)
		g = a.get(T * C)
		ps = append(ps, product{m: at.wg, x: xg, ldx: C, out: g, ldo: C, T: T})
	}
	run(ps...)

	y := a.zeros(T * C)
	wkv5(y, r, k, v, nil, at.decay, at.first, p, p.of(func(s *engine.Snapshot) []float32 { return s.Mem(l) }), H, N)
	groupNorm(y, at.lnx, T, H, N)
	if g != nil {
		silus(g, T, C)
		for i := range y {
			y[i] *= g[i]
		}
	}
	out := a.get(T * C)
	run(product{m: at.wo, x: y, ldx: C, out: out, ldo: C, T: T})
	return out
}

// wkv5 runs the v5/v6 recurrence over the rows of each sequence of the pass
// on its memory mems[j], one head of one sequence per piece of parallel
// work. Per head, S is N×N indexed [key i][value j]:
//
//	y_j = Σ_i r_i·(u_i·k_i·v_j + S[i][j]);  S[i][j] ← k_i·v_j + w_i·S[i][j]
//
// The decay w is fixed per channel (decay, v5) or given per token (decayT, v6).
func wkv5(y, r, k, v, decayT, decay, u []float32, p *pass, mems [][]float32, H, N int) {
	C := H * N
	forEach(len(mems)*H, func(i int) {
		j, h := i/H, i%H
		S := mems[j][h*N*N : (h+1)*N*N]
		t0, t1 := p.rows(j)
		for t := t0; t < t1; t++ {
			o := t*C + h*N
			rt, kt, vt, yt := r[o:o+N], k[o:o+N], v[o:o+N], y[o:o+N]
			var w []float32
			if decayT != nil {
				w = decayT[o : o+N]
			} else {
				w = decay[h*N : (h+1)*N]
			}
			uh := u[h*N : (h+1)*N]
			for i := range N {
				ri, ki, wi := rt[i], kt[i], w[i]
				uk := uh[i] * ki
				row := S[i*N : (i+1)*N]
				for j, sij := range row {
					vj := vt[j]
					yt[j] += ri * (uk*vj + sij)
					row[j] = ki*vj + wi*sij
				}
			}
		}
	})
}
