package lora

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

func newGPU(t testing.TB) *GPU {
	t.Helper()
	g, err := NewGPU(gputest.Device(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// TestGPUAgreesWithCPU runs the kernel on shapes that are not multiples
// of its 16×16 tile or of its rank step of 16, and on matrices cut into
// bands, and compares with the CPU. Both compute the same sums in the same
// order; the GPU may fuse a multiply with an add, so each may be off the
// exact value by (r+2)·2⁻²⁴·(|w| + |s|·Σₖ|pₖqₖ|): they must agree within
// twice that, plus 2⁻¹²⁶ for subnormals flushed to zero.
func TestGPUAgreesWithCPU(t *testing.T) {
	g := newGPU(t)
	rng := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct {
		rows, cols, r int
		limit         uint64 // bytes per binding, 0 for the device's
	}{
		{1, 1, 1, 0}, {1, 17, 3, 0}, {17, 1, 3, 0}, {17, 33, 5, 0}, {16, 16, 16, 0},
		{3, 100, 17, 0}, {129, 7, 64, 0}, {1000, 3, 2, 0}, {65, 130, 33, 0}, {300, 257, 96, 0},
		{100, 37, 5, 37 * 4 * 7},  // bands of 7 rows
		{50, 20, 40, 40 * 4 * 16}, // bands of 16 rows, bounded by the rank
	} {
		t.Run(fmt.Sprintf("%dx%d_r%d_limit%d", c.rows, c.cols, c.r, c.limit), func(t *testing.T) {
			g.limit = c.limit
			defer func() { g.limit = 0 }()
			w := randVals(rng, c.rows*c.cols, F32)
			p := randVals(rng, c.rows*c.r, F32)
			q := randVals(rng, c.cols*c.r, F32)
			s := float32(1.75) / float32(c.r)
			cpu, gpuw := slices.Clone(w), slices.Clone(w)
			if err := (CPU{}).AddLowRank(cpu, c.rows, c.cols, c.r, p, q, s); err != nil {
				t.Fatal(err)
			}
			if err := g.AddLowRank(gpuw, c.rows, c.cols, c.r, p, q, s); err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i := 0; i < c.rows; i++ {
				for j := 0; j < c.cols; j++ {
					mag := math.Abs(float64(w[i*c.cols+j]))
					for k := 0; k < c.r; k++ {
						mag += math.Abs(float64(s) * float64(p[i*c.r+k]) * float64(q[j*c.r+k]))
					}
					tol := 2*float64(c.r+2)*0x1p-24*mag + 0x1p-126
					x, y := cpu[i*c.cols+j], gpuw[i*c.cols+j]
					d := math.Abs(float64(x) - float64(y))
					if d > tol {
						t.Fatalf("[%d,%d]: CPU %g, GPU %g: differ by %g > %g", i, j, x, y, d, tol)
					}
					worst = max(worst, d/tol)
				}
			}
			if slices.Equal(gpuw, w) {
				t.Error("the GPU changed nothing")
			}
			t.Logf("largest difference %.3g of the tolerance", worst)
		})
	}
}

// TestGPUMerge merges a real model on the GPU and on the CPU: the float16
// results may differ by one ulp where a float32 result lies within the
// GPU/CPU difference of a rounding boundary.
func TestGPUMerge(t *testing.T) {
	g := newGPU(t)
	base := openModel(t, "st/tiny-rwkv-6v0-1m.st")
	rng := rand.New(rand.NewPCG(13, 14))
	var ts []*format.Tensor
	for _, bt := range base.Tensors {
		if len(bt.Shape) != 2 || bt.Name == "emb.weight" || !isMatrix(bt.Name, bt.Shape) {
			continue
		}
		const r = 8
		m := bt.Name
		if n, ok := cutWeight(m); ok {
			m = n
		}
		ts = append(ts,
			tensor(t, m+".lora.0", F16, []int64{bt.Shape[1], r}, randVals(rng, int(bt.Shape[1])*r, F16)),
			tensor(t, m+".lora.1", F16, []int64{bt.Shape[0], r}, randVals(rng, int(bt.Shape[0])*r, F16)))
	}
	b := []Blend{{Adapter: mustOpen(t, ts...), Alpha: 0.5}}
	onCPU := mustMerge(t, base, b...)
	onGPU, err := Merge(context.Background(), base, b, &Options{Backend: g})
	if err != nil {
		t.Fatal(err)
	}
	equal, off := 0, 0
	for i, bt := range base.Tensors {
		if onCPU.Tensors[i] == bt {
			continue
		}
		x, y := f16bits(t, onCPU, bt.Name), f16bits(t, onGPU, bt.Name)
		for j := range x {
			switch d := int(x[j]) - int(y[j]); {
			case d == 0:
				equal++
			case (d == 1 || d == -1) && x[j]&0x8000 == y[j]&0x8000:
				off++
			default:
				t.Fatalf("%s[%d]: CPU %#04x, GPU %#04x", bt.Name, j, x[j], y[j])
			}
		}
	}
	t.Logf("%d values equal, %d one ulp apart", equal, off)
	if equal < 100_000 {
		t.Errorf("only %d values compared", equal)
	}
}

func cutWeight(name string) (string, bool) {
	const suffix = ".weight"
	if len(name) > len(suffix) && name[len(name)-len(suffix):] == suffix {
		return name[:len(name)-len(suffix)], true
	}
	return name, false
}

// After Close, AddLowRank fails instead of using released GPU objects.
func TestGPUClosed(t *testing.T) {
	d := gputest.Device(t)
	g, err := NewGPU(d)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	g.Close() // twice is harmless
	w := make([]float32, 4)
	if err := g.AddLowRank(w, 2, 2, 1, []float32{1, 1}, []float32{1, 1}, 1); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("AddLowRank after Close: %v", err)
	}
}
