package runner

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"rwkvkit/format"
)

// int8Payload makes a random Int8Block payload for n elements and returns
// it with its plainly dequantized values: w = min + (max − min)·q/255.
func int8Payload(rng *rand.Rand, n int) ([]byte, []float32) {
	blocks := (n + 127) / 128
	b := make([]byte, n+4*blocks)
	for i := range n {
		b[i] = byte(rng.IntN(256))
	}
	lo, hi := make([]float32, blocks), make([]float32, blocks)
	for j := range blocks {
		l := format.F32ToF16(-0.05 - 0.2*rng.Float32())
		h := format.F32ToF16(format.F16ToF32(l) + 0.4*rng.Float32())
		if j == 1 {
			h = l // a constant block
		}
		binary.LittleEndian.PutUint16(b[n+4*j:], l)
		binary.LittleEndian.PutUint16(b[n+4*j+2:], h)
		lo[j], hi[j] = format.F16ToF32(l), format.F16ToF32(h)
	}
	w := make([]float32, n)
	for i := range w {
		j := i / 128
		w[i] = lo[j] + (hi[j]-lo[j])*float32(b[i])/255
	}
	return b, w
}

// nf4Payload is int8Payload for NF4Block: w = table[code]·absmax, element
// 2i in the low nibble of byte i.
func nf4Payload(rng *rand.Rand, n int) ([]byte, []float32) {
	blocks := (n + 63) / 64
	nb := (n + 1) / 2
	b := make([]byte, nb+2*blocks)
	for i := range nb {
		b[i] = byte(rng.IntN(256))
	}
	absmax := make([]float32, blocks)
	for j := range blocks {
		a := format.F32ToF16(rng.Float32())
		if j == 1 {
			a = 0
		}
		binary.LittleEndian.PutUint16(b[nb+2*j:], a)
		absmax[j] = format.F16ToF32(a)
	}
	w := make([]float32, n)
	for i := range w {
		code := b[i/2] & 15
		if i%2 == 1 {
			code = b[i/2] >> 4
		}
		w[i] = nf4Table[code] * absmax[i/64]
	}
	return b, w
}

// Quantized matrices multiply like their dequantized float32 values:
// |got − want| ≤ 1e-5·Σ|w·x| per output (float32 rounding of a dot
// product is relative to that sum), for shapes whose rows start inside
// blocks, and on odd nibbles.
func TestQuantizedProducts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kind := range []format.DType{format.Int8Block, format.NF4Block} {
		for _, sh := range [][2]int{{8, 256}, {5, 200}, {3, 75}, {40, 768}} {
			rows, cols := sh[0], sh[1]
			t.Run(fmt.Sprintf("%v_%dx%d", kind, rows, cols), func(t *testing.T) {
				var payload []byte
				var w []float32
				if kind == format.Int8Block {
					payload, w = int8Payload(rng, rows*cols)
				} else {
					payload, w = nf4Payload(rng, rows*cols)
				}
				tn, err := format.NewTensor("q", kind, []int64{int64(rows), int64(cols)}, format.BytesOpener(payload))
				if err != nil {
					t.Fatal(err)
				}
				m, err := newMatrix(tn, rows, cols)
				if err != nil {
					t.Fatal(err)
				}
				for _, T := range []int{1, 3} {
					x := make([]float32, T*cols)
					for i := range x {
						x[i] = rng.Float32()*2 - 1
					}
					out := make([]float32, T*rows)
					run(product{m: m, x: x, ldx: cols, out: out, ldo: rows, T: T})
					for tt := range T {
						for r := range rows {
							var want, scale float64
							for c := range cols {
								p := float64(w[r*cols+c]) * float64(x[tt*cols+c])
								want += p
								scale += math.Abs(p)
							}
							if d := math.Abs(float64(out[tt*rows+r]) - want); d > 1e-5*scale {
								t.Errorf("T=%d token %d row %d: got %g, want %g (|diff| %.3g > 1e-5·%.3g)", T, tt, r, out[tt*rows+r], want, d, scale)
							}
						}
					}
				}
			})
		}
	}
}

func TestQuantizedPayloadSize(t *testing.T) {
	for _, kind := range []format.DType{format.Int8Block, format.NF4Block} {
		tn, err := format.NewTensor("q", kind, []int64{4, 64}, format.BytesOpener(make([]byte, 10)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newMatrix(tn, 4, 64); err == nil {
			t.Errorf("%v: a short payload was accepted", kind)
		}
	}
}
