package runner

import (
	"math"

	"github.com/rwkvkit/rwkvkit/engine"
)

// timeMix4 is RWKV-4's time mixing: a per-channel decay and bonus and an
// x⊙m + prev⊙(1−m) token shift.
type timeMix4 struct {
	projections
	mixK, mixV, mixR []float32
	decay, first     []float32 // decay = −exp(time_decay); bonus u
}

func (at *timeMix4) matrices() []matrix { return []matrix{at.wr, at.wk, at.wv, at.wo} }

func (l *loader) timeMix4(att string) *timeMix4 {
	C := l.info.Embed
	return &timeMix4{
		projections: l.projections(att),
		mixK:        l.vec(att+"time_mix_k", C),
		mixV:        l.vec(att+"time_mix_v", C),
		mixR:        l.vec(att+"time_mix_r", C),
		decay:       mapVec(l.vec(att+"time_decay", C), func(x float64) float64 { return -math.Exp(x) }),
		first:       l.vec(att+"time_first", C),
	}
}

// mix computes the time mixing of the rows of p (docs/rwkv-math.md, v4),
// with the recurrence in its numerically stable form: the state keeps
// aa, bb scaled by exp(−pp), so exp is never taken of a raw key.
func (at *timeMix4) mix(d dims, xa []float32, p *pass, l int, a *arena, vFirst []float32) []float32 {
	C, T := d.C, p.T
	shift := p.of(func(s *engine.Snapshot) []float32 { return s.AttShift(l) })
	xk, xv, xr := a.get(T*C), a.get(T*C), a.get(T*C)
	lerpShift(xk, xa, p, shift, at.mixK, C)
	lerpShift(xv, xa, p, shift, at.mixV, C)
	lerpShift(xr, xa, p, shift, at.mixR, C)
	k, v, r := a.get(T*C), a.get(T*C), a.get(T*C)
	run(product{m: at.wk, x: xk, ldx: C, out: k, ldo: C, T: T},
		product{m: at.wv, x: xv, ldx: C, out: v, ldo: C, T: T},
		product{m: at.wr, x: xr, ldx: C, out: r, ldo: C, T: T})

	mems := p.of(func(s *engine.Snapshot) []float32 { return s.Mem(l) })
	const span = 64 // channels per piece of parallel work
	spans := (C + span - 1) / span
	forEach(len(mems)*spans, func(i int) {
		j, i := i/spans, i%spans
		t0, t1 := p.rows(j)
		aa, bb, pp := mems[j][:C], mems[j][C:2*C], mems[j][2*C:3*C]
		for c := i * span; c < min(C, (i+1)*span); c++ {
			w, u := at.decay[c], at.first[c]
			sa, sb, sp := aa[c], bb[c], pp[c]
			for t := t0; t < t1; t++ {
				kt, vt := k[t*C+c], v[t*C+c]
				ww := u + kt
				q := max(sp, ww)
				e1, e2 := exp32(sp-q), exp32(ww-q)
				wkv := (e1*sa + e2*vt) / (e1*sb + e2)
				r[t*C+c] = sigmoid(r[t*C+c]) * wkv
				ww = sp + w
				q = max(ww, kt)
				e1, e2 = exp32(ww-q), exp32(kt-q)
				sa = e1*sa + e2*vt
				sb = e1*sb + e2
				sp = q
			}
			aa[c], bb[c], pp[c] = sa, sb, sp
		}
	})
	out := a.get(T * C)
	run(product{m: at.wo, x: r, ldx: C, out: out, ldo: C, T: T})
	return out
}
