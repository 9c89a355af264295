package runner

import (
	"math"

	"github.com/rwkvkit/rwkvkit/engine"
)

func embedRow(emb matrix, tok int, dst []float32) {
	var sc scratch
	copy(dst, emb.tile(tok, tok+1, &sc))
}

// block runs layer l on the rows x (T×C) of the pass in place.
func (m *Model) block(l int, x []float32, p *pass, a *arena, vFirst []float32) {
	C, T := m.info.Embed, p.T
	ly := &m.layers[l]
	xa := a.get(T * C)
	layerNorms(xa, x, ly.ln1, T, C)
	out := ly.att.mix(m.dims(), xa, p, l, a, vFirst)
	p.keepLast(p.of(func(s *engine.Snapshot) []float32 { return s.AttShift(l) }), xa, C)
	addRows(x, out, T, C)

	xf := a.get(T * C)
	layerNorms(xf, x, ly.ln2, T, C)
	shift := p.of(func(s *engine.Snapshot) []float32 { return s.FFNShift(l) })
	out = m.channelMix(ly, xf, p, shift, a)
	p.keepLast(shift, xf, C)
	addRows(x, out, T, C)
}

// lerpShift sets dst (T×C) to x⊙m + prev⊙(1−m), the v4/v5 token shift;
// shift[j] is the state's input before sequence j.
func lerpShift(dst, xs []float32, p *pass, shift [][]float32, mix []float32, C int) {
	forRows(p.T, C, func(t0, t1 int) { lerpShiftRows(dst, xs, p, shift, mix, t0, t1, C) })
}

func lerpShiftRows(dst, xs []float32, ps *pass, shift [][]float32, mix []float32, t0, t1, C int) {
	for t := t0; t < t1; t++ {
		p, x, d := ps.prev(xs, shift, t, C), xs[t*C:(t+1)*C], dst[t*C:(t+1)*C]
		for c, mc := range mix[:C] {
			d[c] = x[c]*mc + p[c]*(1-mc)
		}
	}
}

// addShift sets dst (T×C) to x + (prev−x)⊙m, the v6/v7 token shift.
func addShift(dst, xs []float32, p *pass, shift [][]float32, mix []float32, C int) {
	forRows(p.T, C, func(t0, t1 int) { addShiftRows(dst, xs, p, shift, mix, t0, t1, C) })
}

func addShiftRows(dst, xs []float32, ps *pass, shift [][]float32, mix []float32, t0, t1, C int) {
	for t := t0; t < t1; t++ {
		p, x, d := ps.prev(xs, shift, t, C), xs[t*C:(t+1)*C], dst[t*C:(t+1)*C]
		for c, mc := range mix[:C] {
			d[c] = x[c] + (p[c]-x[c])*mc
		}
	}
}

// channelMix is the feed-forward half of every version.
func (m *Model) channelMix(ly *layer, xf []float32, p *pass, shift [][]float32, a *arena) []float32 {
	C, T := m.info.Embed, p.T
	f := &ly.ffn
	F := rowsOf(f.wk)
	mix := addShift
	if f.lerp {
		mix = lerpShift
	}
	xk := a.get(T * C)
	mix(xk, xf, p, shift, f.mixK, C)
	k := a.get(T * F)
	var r []float32
	if f.wr != nil {
		xr := a.get(T * C)
		mix(xr, xf, p, shift, f.mixR, C)
		r = a.get(T * C)
		run(product{m: f.wk, x: xk, ldx: C, out: k, ldo: F, T: T},
			product{m: f.wr, x: xr, ldx: C, out: r, ldo: C, T: T})
	} else {
		run(product{m: f.wk, x: xk, ldx: C, out: k, ldo: F, T: T})
	}
	forRows(T, F, func(t0, t1 int) { reluSquare(k[t0*F : t1*F]) })
	out := a.get(T * C)
	run(product{m: f.wv, x: k, ldx: F, out: out, ldo: C, T: T})
	if r != nil {
		forRows(T, C, func(t0, t1 int) {
			sigmoidVec(r[t0*C:t1*C], r[t0*C:t1*C])
			for i := t0 * C; i < t1*C; i++ {
				out[i] *= r[i]
			}
		})
	}
	return out
}

// layerNorms applies layerNorm to each of the T rows of x.
func layerNorms(dst, x []float32, n norm, T, C int) {
	forRows(T, C, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			layerNorm(dst[t*C:(t+1)*C], x[t*C:(t+1)*C], n)
		}
	})
}

// layerNorm sets dst to LN(x)·w + b with eps 1e-5 (biased variance),
// accumulating in float64.
func layerNorm(dst, x []float32, n norm) {
	normalize(dst, x, n.w, n.b, 1e-5)
}

func normalize(dst, x, w, b []float32, eps float64) {
	// One pass for both moments: in float64, E[x²] − E[x]² loses nothing
	// that float32 activations hold.
	var s0, s1, q0, q1 float64
	i := 0
	for ; i+2 <= len(x); i += 2 {
		a, c := float64(x[i]), float64(x[i+1])
		s0 += a
		s1 += c
		q0 += a * a
		q1 += c * c
	}
	if i < len(x) {
		a := float64(x[i])
		s0 += a
		q0 += a * a
	}
	n := float64(len(x))
	mean := (s0 + s1) / n
	inv := float32(1 / math.Sqrt(max((q0+q1)/n-mean*mean, 0)+eps))
	m := float32(mean)
	w, b = w[:len(x)], b[:len(x)]
	for i, v := range x {
		dst[i] = (v-m)*inv*w[i] + b[i]
	}
}

// groupNorm normalises each head of y (T×C) in place with eps 64e-5 and
// applies the ln_x weight and bias.
func groupNorm(y []float32, n norm, T, H, N int) {
	C := H * N
	forRows(T, C, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			for h := range H {
				o := t*C + h*N
				normalize(y[o:o+N], y[o:o+N], n.w[h*N:(h+1)*N], n.b[h*N:(h+1)*N], 64e-5)
			}
		}
	})
}

// addRows adds y to x, both T×C.
func addRows(x, y []float32, T, C int) {
	forRows(T, C, func(t0, t1 int) { add(x[t0*C:t1*C], y[t0*C:t1*C]) })
}

// silus sets g to g⊙σ(g) (SiLU) over T rows of C.
func silus(g []float32, T, C int) {
	forRows(T, C, func(t0, t1 int) {
		var s [256]float32
		for x := g[t0*C : t1*C]; len(x) > 0; {
			n := min(len(x), len(s))
			sigmoidVec(s[:n], x[:n])
			for i := range n {
				x[i] *= s[i]
			}
			x = x[n:]
		}
	})
}

func add(x, y []float32) {
	y = y[:len(x)]
	for i := range x {
		x[i] += y[i]
	}
}

func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }
func exp32(x float32) float32   { return float32(math.Exp(float64(x))) }
func tanh32(x float32) float32  { return float32(math.Tanh(float64(x))) }

// arena hands out float32 buffers for one layer's temporaries, which live
// until the next reset; after the first layer it no longer allocates.
type arena struct {
	buf []float32
	off int
}

func (a *arena) reset() { a.off = 0 }

// get returns n floats of unspecified content, for outputs written whole.
func (a *arena) get(n int) []float32 {
	if a.off+n > len(a.buf) {
		// Slices handed out earlier keep the old buffer alive.
		a.buf = make([]float32, max(2*len(a.buf), a.off+n, 1<<12))
		a.off = 0
	}
	s := a.buf[a.off : a.off+n : a.off+n]
	a.off += n
	return s
}

// zeros returns n zeroed floats, for outputs that are accumulated.
func (a *arena) zeros(n int) []float32 {
	s := a.get(n)
	clear(s)
	return s
}

// forRows calls f on pieces [t0, t1) of T rows of width elements, spread
// over the workers when there is enough work to pay for waking them.
func forRows(T, width int, f func(t0, t1 int)) {
	w := workers()
	if T < 2 || w < 2 || T*width < 1<<14 {
		f(0, T)
		return
	}
	pieces := min(T, 4*w)
	chunk := (T + pieces - 1) / pieces
	forEach((T+chunk-1)/chunk, func(i int) { f(i*chunk, min(T, (i+1)*chunk)) })
}
