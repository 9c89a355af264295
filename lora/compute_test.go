package lora

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// TestEncodeF16 checks that a merged tensor's float16 bytes are, element by
// element, format.F32ToF16 (torch's .half()), whichever code converts them:
// float32's edge classes and random values, at every length up to past the
// vector kernels' widths so each tail is met.
func TestEncodeF16(t *testing.T) {
	edges := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65520, -65520, 1e-8, 6e-8, 3e-8,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.Float32frombits(0xffc00001),
		math.Float32frombits(0x7f800001), math.SmallestNonzeroFloat32, 1 + 1.0/2048, 1 + 3.0/2048}
	rng := rand.New(rand.NewPCG(1, 2))
	vals := append([]float32(nil), edges...)
	for len(vals) < 300 {
		vals = append(vals, math.Float32frombits(rng.Uint32()), float32(rng.NormFloat64()))
	}
	for n := 0; n <= len(vals); n++ {
		w := vals[:n]
		b := make([]byte, 2*n)
		encode(b, w, format.F16)
		for i, x := range w {
			if got, want := binary.LittleEndian.Uint16(b[2*i:]), format.F32ToF16(x); got != want {
				t.Fatalf("n=%d, element %d (%#08x): %#04x, want %#04x", n, i, math.Float32bits(x), got, want)
			}
		}
	}
}
