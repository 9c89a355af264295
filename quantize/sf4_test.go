package quantize_test

import (
	"math"
	"testing"

	"github.com/rwkvkit/rwkvkit/quantize"
)

// Quantiles of Student's t with 5 degrees of freedom, to six decimals, from
// the standard tables (NIST/SEMATECH e-Handbook of Statistical Methods,
// 1.3.6.7.2; R's qt(p, 5) gives the same digits).
var t5Quantiles = []struct{ p, t float64 }{
	{0.90, 1.475884}, {0.95, 2.015048}, {0.975, 2.570582}, {0.99, 3.364930},
	{0.995, 4.032143}, {0.999, 5.893430}, {0.75, 0.726687}, {0.60, 0.267181},
}

func TestSF4Table(t *testing.T) {
	for _, q := range t5Quantiles {
		if got := quantize.StudentT5Quantile(q.p); math.Abs(got-q.t) > 5e-7 {
			t.Errorf("t5 quantile of %v = %.7f, tables give %.6f", q.p, got, q.t)
		}
		if got := quantize.StudentT5Quantile(1 - q.p); math.Abs(got+q.t) > 5e-7 {
			t.Errorf("t5 quantile of %v = %.7f, tables give %.6f", 1-q.p, got, -q.t)
		}
	}
	tab := quantize.SF4Table
	if tab[0] != -1 || tab[7] != 0 || tab[15] != 1 {
		t.Errorf("SF4 table ends and zero %v %v %v, want -1, 0, 1", tab[0], tab[7], tab[15])
	}
	// Each value is the t₅ quantile of its probability over the largest:
	// the CDF of value·q₁₅ gives the probability back.
	const delta = (1.0/32 + 1.0/30) / 2
	q15 := quantize.StudentT5Quantile(1 - delta)
	for i, v := range tab {
		p := 0.5 + float64(i-7)*(0.5-delta)/8
		if i < 7 {
			p = delta + float64(i)*(0.5-delta)/7
		}
		if got := quantize.StudentT5CDF(float64(v) * q15); math.Abs(got-p) > 1e-7 {
			t.Errorf("SF4[%d] = %v: CDF %v, want probability %v", i, v, got, p)
		}
		if i > 0 && tab[i] <= tab[i-1] {
			t.Errorf("SF4 table not increasing at %d: %v", i, tab)
		}
	}
	t.Logf("SF4 table %v", tab)
}
