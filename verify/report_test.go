package verify

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func ptr(v float64) *float64 { return &v }

// Each threshold fails exactly when its metric is on the wrong side of it
// (equal passes), and a NaN metric fails every threshold on it.
func TestThresholds(t *testing.T) {
	m := Metrics{MeanKL: 0.01, Top1Percent: 95, MaxAbsDiff: 0.5}
	nan := Metrics{MeanKL: math.NaN(), Top1Percent: math.NaN(), MaxAbsDiff: math.NaN()}
	cases := []struct {
		name string
		th   Thresholds
		m    Metrics
		want []string // substrings of the failures, in order
	}{
		{"none", Thresholds{}, m, nil},
		{"all pass at equality", Thresholds{ptr(0.01), ptr(95), ptr(0.5)}, m, nil},
		{"KL", Thresholds{MaxMeanKL: ptr(0.005)}, m, []string{"mean KL 0.01 > 0.005"}},
		{"top-1", Thresholds{MinTop1Percent: ptr(96)}, m, []string{"top-1 agreement 95.00% < 96%"}},
		{"dlogit", Thresholds{MaxAbsDLogit: ptr(0.25)}, m, []string{"max |Δlogit| 0.5 > 0.25"}},
		{"NaN", Thresholds{ptr(1), ptr(0), ptr(1)}, nan, []string{"mean KL", "top-1", "Δlogit"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.th.Check(c.m)
			if len(got) != len(c.want) {
				t.Fatalf("failures %q, want %d", got, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("failure %q lacks %q", got[i], w)
				}
			}
		})
	}
}

// Thresholds no comparison can meet, or that mean nothing, are refused
// with the threshold named; the edges of the valid ranges are accepted.
func TestValidateThresholds(t *testing.T) {
	cases := []struct {
		name string
		th   Thresholds
		want string // "" when valid
	}{
		{"none", Thresholds{}, ""},
		{"edges", Thresholds{ptr(0), ptr(100), ptr(0)}, ""},
		{"lowest top-1", Thresholds{MinTop1Percent: ptr(0)}, ""},
		{"unbounded", Thresholds{MaxMeanKL: ptr(math.Inf(1)), MaxAbsDLogit: ptr(math.Inf(1))}, ""},
		{"negative KL", Thresholds{MaxMeanKL: ptr(-1)}, "mean KL threshold -1: want 0 or more"},
		{"NaN KL", Thresholds{MaxMeanKL: ptr(math.NaN())}, "mean KL threshold NaN"},
		{"top-1 above 100", Thresholds{MinTop1Percent: ptr(150)}, "top-1 agreement threshold 150: want 0 to 100"},
		{"negative top-1", Thresholds{MinTop1Percent: ptr(-5)}, "top-1 agreement threshold -5"},
		{"negative dlogit", Thresholds{MaxAbsDLogit: ptr(-0.5)}, "|Δlogit| threshold -0.5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.th.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Validate = %v, want an error with %q", err, c.want)
			case c.want != "":
				var te *ThresholdError
				if !errors.As(err, &te) {
					t.Errorf("Validate = %T, want a *ThresholdError", err)
				}
			}
		})
	}
}

func TestNewReport(t *testing.T) {
	rows := [][]float32{{1, 2, 3}, {0, 0, 1}}
	other := [][]float32{{1, 2, 3}, {0, 1, 0}}
	ids := []int{0, 2}
	r, err := NewReport("m", "r", ids, rows, rows, Thresholds{MaxMeanKL: ptr(0)}, false)
	if err != nil || !r.Passed || r.Failed != nil || r.Tokens != 2 {
		t.Fatalf("self-comparison: %+v, %v", r, err)
	}
	r, err = NewReport("m", "r", ids, rows, other, Thresholds{MinTop1Percent: ptr(100)}, false)
	if err != nil || r.Passed || len(r.Failed) != 1 || r.Metrics.Top1Percent != 50 {
		t.Fatalf("one position of two disagrees: %+v, %v", r, err)
	}
	if _, err := NewReport("m", "", ids, rows, nil, Thresholds{MaxMeanKL: ptr(1)}, false); err == nil {
		t.Error("thresholds without a reference were accepted")
	}
}
