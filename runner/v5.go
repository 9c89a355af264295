package runner

import "github.com/rwkvkit/rwkvkit/format"

// timeMix5 is the time mixing of v5.0, the gated per-head-decay v5.1 and
// v5.2 (docs/rwkv-math.md, v5 family); their differences were settled at
// load, where decay and bonus became per-channel vectors.
func (m *Model) timeMix5(ly *layer, xa []float32, T int, s *State, l int, a *arena) []float32 {
	C, H, N := m.info.Embed, m.info.Heads, m.info.HeadSize
	at := &ly.att
	first := s.attShift(l)
	xk, xv, xr := a.get(T*C), a.get(T*C), a.get(T*C)
	lerpShift(xk, xa, first, at.mixK, T, C)
	lerpShift(xv, xa, first, at.mixV, T, C)
	lerpShift(xr, xa, first, at.mixR, T, C)
	k, v, r := a.get(T*C), a.get(T*C), a.get(T*C)
	ps := []product{
		{m: at.wk, x: xk, ldx: C, out: k, ldo: C, T: T},
		{m: at.wv, x: xv, ldx: C, out: v, ldo: C, T: T},
		{m: at.wr, x: xr, ldx: C, out: r, ldo: C, T: T},
	}
	var g []float32
	if m.info.Version != format.V5_0 {
		xg := a.get(T * C)
		lerpShift(xg, xa, first, at.mixG, T, C)
		g = a.get(T * C)
		ps = append(ps, product{m: at.wg, x: xg, ldx: C, out: g, ldo: C, T: T})
	}
	run(ps...)

	y := a.zeros(T * C)
	wkv5(y, r, k, v, nil, at.decay, at.first, s.mem(l), T, H, N)
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

// wkv5 runs the v5/v6 recurrence over T tokens, one head per piece of
// parallel work. Per head, S is N×N indexed [key i][value j]:
//
//	y_j = Σ_i r_i·(u_i·k_i·v_j + S[i][j]);  S[i][j] ← k_i·v_j + w_i·S[i][j]
//
// The decay w is fixed per channel (decay, v5) or given per token (decayT, v6).
func wkv5(y, r, k, v, decayT, decay, u, mem []float32, T, H, N int) {
	C := H * N
	forEach(H, func(h int) {
		S := mem[h*N*N : (h+1)*N*N]
		for t := range T {
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
