package quantize

import "math"

// SF4Table is web-rwkv's SF4 code book: NF4's construction with the
// quantiles of Student's t distribution with ν = 5 degrees of freedom in
// place of the normal ones, whose heavier tails fit weight matrices'
// outliers. With δ = (1/32 + 1/30)/2, the probabilities δ + i(½ − δ)/7 for
// i = 0…6 and ½ + i(½ − δ)/8 for i = 0…8 are mapped through the inverse
// CDF of t₅ in float64 and divided by the largest; the values are stored
// as float32. Like NF4's, the table runs from −1 to 1 with 0 at index 7.
var SF4Table = func() (t [16]float32) {
	const delta = (1.0/32 + 1.0/30) / 2
	var q [16]float64
	for i := range 7 {
		q[i] = studentT5Quantile(delta + float64(i)*(0.5-delta)/7)
	}
	for i := range 9 {
		q[7+i] = studentT5Quantile(0.5 + float64(i)*(0.5-delta)/8)
	}
	for i, v := range q {
		t[i] = float32(v / q[15])
	}
	return t
}()

// SF4Midpoints are the decision thresholds between neighbouring
// SF4Table values, (t_k + t_{k+1})/2 in float32.
var SF4Midpoints = midpoints(&SF4Table)

func midpoints(t *[16]float32) (m [15]float32) {
	for k := range m {
		m[k] = float32(t[k]+t[k+1]) / 2
	}
	return m
}

// studentT5CDF is the CDF of Student's t with 5 degrees of freedom in closed
// form (Abramowitz & Stegun 26.7.4, odd ν): with θ = atan(t/√5),
// F(t) = ½ + (θ + sin θ cos θ (1 + ⅔ cos² θ))/π.
func studentT5CDF(t float64) float64 {
	th := math.Atan(t / math.Sqrt(5))
	s, c := math.Sincos(th)
	return 0.5 + (th+s*c*(1+2.0/3*c*c))/math.Pi
}

// studentT5Quantile inverts studentT5CDF by bisection until the bracket is
// two neighbouring float64 values: the CDF is increasing, so this converges
// to the float64 nearest the quantile (to the CDF's own rounding) in at
// most a few thousand halvings, and needs no starting guess. Quantiles
// below ½ are the negated ones above, so the table is exactly symmetric.
func studentT5Quantile(p float64) float64 {
	switch {
	case p == 0.5:
		return 0
	case p < 0.5:
		return -studentT5Quantile(1 - p)
	case p >= 1:
		return math.Inf(1)
	}
	lo, hi := 0.0, 1.0
	for studentT5CDF(hi) < p {
		lo, hi = hi, 2*hi
	}
	for {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			return mid
		}
		if studentT5CDF(mid) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
}
