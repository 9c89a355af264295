package runner

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
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

// nf4Payload is int8Payload for NF4Block (and, with SF4's table, SF4Block):
// w = table[code]·absmax, element 2i in the low nibble of byte i.
func nf4Payload(rng *rand.Rand, n int, table *[16]float32) ([]byte, []float32) {
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
		w[i] = table[code] * absmax[i/64]
	}
	return b, w
}

// Quantized matrices multiply like their dequantized float32 values:
// |got − want| ≤ 1e-5·Σ|w·x| per output (float32 rounding of a dot
// product is relative to that sum), for shapes whose rows start inside
// blocks, and on odd nibbles.
func TestQuantizedProducts(t *testing.T) { forKernelSets(t, testQuantizedProducts) }

func testQuantizedProducts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kind := range []format.DType{format.Int8Block, format.NF4Block, format.SF4Block} {
		for _, sh := range [][2]int{{8, 256}, {5, 200}, {3, 75}, {40, 768}} {
			rows, cols := sh[0], sh[1]
			t.Run(fmt.Sprintf("%v_%dx%d", kind, rows, cols), func(t *testing.T) {
				var payload []byte
				var w []float32
				if kind == format.Int8Block {
					payload, w = int8Payload(rng, rows*cols)
				} else if kind == format.NF4Block {
					payload, w = nf4Payload(rng, rows*cols, &nf4Table)
				} else {
					payload, w = nf4Payload(rng, rows*cols, &quantize.SF4Table)
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

// quantizeInt8 and quantizeNF4 quantize plainly as docs/web-rwkv-layout.md
// §2 describes; they return the payload and the dequantized values.
func quantizeInt8(v []float32) ([]byte, []float32) {
	n := len(v)
	blocks := (n + 127) / 128
	b := make([]byte, n+4*blocks)
	deq := make([]float32, n)
	for j := range blocks {
		blk := v[j*128 : min(n, (j+1)*128)]
		lo, hi := blk[0], blk[0]
		for _, x := range blk {
			lo, hi = min(lo, x), max(hi, x)
		}
		l16, h16 := format.F32ToF16(lo), format.F32ToF16(hi)
		binary.LittleEndian.PutUint16(b[n+4*j:], l16)
		binary.LittleEndian.PutUint16(b[n+4*j+2:], h16)
		lo, hi = format.F16ToF32(l16), format.F16ToF32(h16)
		for i, x := range blk {
			q := 0.0
			if hi > lo {
				q = math.Round(255 * math.Min(math.Max(float64((x-lo)/(hi-lo)), 0), 1))
			}
			b[j*128+i] = byte(q)
			deq[j*128+i] = lo + (hi-lo)*float32(q)/255
		}
	}
	return b, deq
}

func quantizeNF4(v []float32) ([]byte, []float32) {
	n := len(v)
	blocks := (n + 63) / 64
	nb := (n + 1) / 2
	b := make([]byte, nb+2*blocks)
	deq := make([]float32, n)
	for j := range blocks {
		blk := v[j*64 : min(n, (j+1)*64)]
		var am float32
		for _, x := range blk {
			am = max(am, float32(math.Abs(float64(x))))
		}
		a16 := format.F32ToF16(am)
		binary.LittleEndian.PutUint16(b[nb+2*j:], a16)
		am = format.F16ToF32(a16)
		for i, x := range blk {
			code := 7
			if am > 0 {
				best := math.Inf(1)
				for c, t := range nf4Table {
					if d := math.Abs(float64(x/am - t)); d <= best {
						best, code = d, c
					}
				}
			}
			e := j*64 + i
			b[e/2] |= byte(code) << (4 * (e % 2))
			deq[e] = nf4Table[code] * am
		}
	}
	return b, deq
}

// A model whose matrices are Int8 and NF4 blocks computes what the same model
// with those matrices dequantized to float32 computes (to 1e-4, float32
// rounding in a different order), so Load reads quantized tensors and every
// product path uses them right; and quantization changed the logits.
func TestQuantizedModel(t *testing.T) {
	src := openTiny(t, "tiny-rwkv-7v0-834K.pth")
	var quant, deq []*format.Tensor
	for _, x := range src.Tensors {
		kind := format.Invalid
		if strings.HasSuffix(x.Name, "key.weight") || strings.HasSuffix(x.Name, "value.weight") ||
			strings.HasSuffix(x.Name, "receptance.weight") || strings.HasSuffix(x.Name, "output.weight") {
			kind = format.Int8Block
			if strings.Contains(x.Name, "ffn.") || strings.HasPrefix(x.Name, "blocks.1.") {
				kind = format.NF4Block
			}
		}
		if kind == format.Invalid {
			quant, deq = append(quant, x), append(deq, x)
			continue
		}
		v, err := x.Float32()
		if err != nil {
			t.Fatal(err)
		}
		var payload []byte
		var d []float32
		if kind == format.Int8Block {
			payload, d = quantizeInt8(v)
		} else {
			payload, d = quantizeNF4(v)
		}
		q, err := format.NewTensor(x.Name, kind, x.Shape, format.BytesOpener(payload))
		if err != nil {
			t.Fatal(err)
		}
		quant, deq = append(quant, q), append(deq, f32Tensor(t, x.Name, x.Shape, d))
	}
	mq, err := Load(context.Background(), &format.Source{Format: src.Format, Tensors: quant})
	if err != nil {
		t.Fatal(err)
	}
	md, err := Load(context.Background(), &format.Source{Format: src.Format, Tensors: deq})
	if err != nil {
		t.Fatal(err)
	}
	toks := []int{34, 105, 110, 32, 116, 104, 101}
	for _, step := range []bool{true, false} {
		var a, b [][]float32
		if step {
			a, b = stepRows(t, mq, toks), stepRows(t, md, toks)
		} else {
			a, b = forwardRows(t, mq, toks), forwardRows(t, md, toks)
		}
		for i := range a {
			if d := maxAbsDiff(a[i], b[i]); d > 1e-4 {
				t.Errorf("step=%v position %d: quantized and dequantized differ by %.3g", step, i, d)
			}
		}
	}
	orig := loadFile(t, filepath.Join(tinyDir, "tiny-rwkv-7v0-834K.pth"))
	if d := maxAbsDiff(forwardRows(t, orig, toks)[6], forwardRows(t, mq, toks)[6]); d < 1e-3 {
		t.Errorf("quantization changed the logits by only %g: the weights were not quantized", d)
	}
}
