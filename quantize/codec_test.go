package quantize_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
)

func f16s(vals ...float32) []uint16 {
	out := make([]uint16, len(vals))
	for i, v := range vals {
		out[i] = format.F32ToF16(v)
		if format.F16ToF32(out[i]) != v {
			panic("test value not exact in float16")
		}
	}
	return out
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }

// TestInt8KnownAnswers checks codes worked out by hand from the definition.
func TestInt8KnownAnswers(t *testing.T) {
	tests := []struct {
		name     string
		in       []float32
		codes    []byte
		min, max float32
	}{
		// R = 2, s = 127.5: q = (v+1)·127.5, half to even.
		{"scale 127.5", []float32{-1, 1, 0, 0.5, -0.5, 0.25}, []byte{0, 255, 128, 191, 64, 159}, -1, 1},
		// R = 255, s = 1: q = v rounded half to even (web-rwkv would round 2.5 up).
		{"ties", []float32{0, 255, 2.5, 3.5, 0.5, 1.5, 254.5, 2.25}, []byte{0, 255, 2, 4, 0, 2, 254, 2}, 0, 255},
		{"constant", []float32{3, 3, 3}, []byte{0, 0, 0}, 3, 3},
		{"one element", []float32{-7}, []byte{0}, -7, -7},
		// −0 counts as +0: min is stored as +0.
		{"negative zero", []float32{float32(math.Copysign(0, -1)), 0, 1}, []byte{0, 0, 255}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := quantize.Encode(format.Int8Block, f16s(tt.in...))
			if err != nil {
				t.Fatal(err)
			}
			n := len(tt.in)
			if !bytes.Equal(b[:n], tt.codes) {
				t.Errorf("codes %v, want %v", b[:n], tt.codes)
			}
			if p := b[n:]; len(p) != 4 || le16(p) != format.F32ToF16(tt.min) || le16(p[2:]) != format.F32ToF16(tt.max) {
				t.Errorf("params % x, want min %v max %v", p, tt.min, tt.max)
			}
		})
	}
}

// TestNF4KnownAnswers checks codes worked out by hand: with absmax 1 the
// thresholds are the table's midpoints.
func TestNF4KnownAnswers(t *testing.T) {
	tests := []struct {
		name  string
		in    []uint16
		codes []byte
		amax  uint16
	}{
		// 1 → 15, 0 → 7, −1 → 0; 0.5 < (0.4407+0.5626)/2 → 12;
		// −0.5 < (−0.5251−0.3949)/2 → 2; (0+0.0796)/2 ≤ 0.0625 < (0.0796+0.1609)/2 → 8.
		{"absmax 1", f16s(1, 0, -1, 0.5, -0.5, 0.0625), []byte{0x7f, 0xc0, 0x82}, 0x3c00},
		// a = 0x3bb7 (0.96435547): T₁ = float32(m₁·a) = −0.5888671875 = f16 0xb8b6
		// exactly, so that value ties between codes 1 and 2 and takes 2; the
		// float16 values just below and above take 1 and 2. (With float16
		// inputs an exact tie exists only at T₁: searched over every absmax.)
		{"tie", []uint16{0x3bb7, 0xb8b6, 0xb8b7, 0xb8b5}, []byte{0x2f, 0x21}, 0x3bb7},
		{"zero block", f16s(0, 0, float32(math.Copysign(0, -1))), []byte{0x77, 0x07}, 0},
		{"one element", f16s(-3), []byte{0x00}, 0x4200},
		{"odd count", f16s(2, -2, 1), []byte{0x0f, 0x0c}, 0x4000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := quantize.Encode(format.NF4Block, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			nc := (len(tt.in) + 1) / 2
			if !bytes.Equal(b[:nc], tt.codes) {
				t.Errorf("codes % x, want % x", b[:nc], tt.codes)
			}
			if p := b[nc:]; len(p) != 2 || le16(p) != tt.amax {
				t.Errorf("absmax % x, want %#04x", p, tt.amax)
			}
		})
	}
}

func TestNF4Midpoints(t *testing.T) {
	// (t0+t1)/2 and (t7+t8)/2 worked out in float32 outside Go.
	if m := math.Float32bits(quantize.NF4Midpoints[0]); m != 0xbf591cd8 {
		t.Errorf("m0 bits %#x, want 0xbf591cd8 (-0.8480963707)", m)
	}
	if m := math.Float32bits(quantize.NF4Midpoints[7]); m != 0x3d22faff {
		t.Errorf("m7 bits %#x, want 0x3d22faff (0.0397901498)", m)
	}
}

// refEncode is a plain transcription of the package definition (float
// comparisons, math.RoundToEven, a linear count), independent of the
// codec's integer keys, magic-number rounding and binary search.
func refEncode(kind format.DType, src []uint16) []byte {
	bs := format.Int8BlockSize
	if kind != format.Int8Block {
		bs = format.NF4BlockSize
	}
	var codes, params []byte
	var mids [15]float32
	if kind != format.Int8Block {
		tab := table(kind)
		for k := range mids {
			mids[k] = float32(tab[k]+tab[k+1]) / 2
		}
	}
	var nibbles []byte
	for lo := 0; lo < len(src); lo += bs {
		blk := src[lo:min(lo+bs, len(src))]
		v := make([]float32, len(blk))
		for i, h := range blk {
			v[i] = format.F16ToF32(h)
		}
		if kind == format.Int8Block {
			mn, mx := float32(math.Inf(1)), float32(math.Inf(-1))
			for _, x := range v {
				mn, mx = float32(math.Min(float64(mn), float64(x))), float32(math.Max(float64(mx), float64(x)))
			}
			if mn == 0 {
				mn = 0 // +0
			}
			if mx == 0 {
				mx = 0
			}
			r := mx - mn
			var s float32
			if r != 0 {
				s = 255 / r
			}
			for _, x := range v {
				d := x - mn
				codes = append(codes, byte(math.RoundToEven(float64(float32(d*s)))))
			}
			params = binary.LittleEndian.AppendUint16(params, format.F32ToF16(mn))
			params = binary.LittleEndian.AppendUint16(params, format.F32ToF16(mx))
		} else {
			var a float32
			for _, x := range v {
				a = max(a, float32(math.Abs(float64(x))))
			}
			for _, x := range v {
				c := byte(7)
				if a != 0 {
					c = 0
					for _, m := range mids {
						if x >= float32(m*a) {
							c++
						}
					}
				}
				nibbles = append(nibbles, c)
			}
			params = binary.LittleEndian.AppendUint16(params, format.F32ToF16(a))
		}
	}
	if kind != format.Int8Block {
		for i := 0; i < len(nibbles); i += 2 {
			b := nibbles[i]
			if i+1 < len(nibbles) {
				b |= nibbles[i+1] << 4
			}
			codes = append(codes, b)
		}
	}
	return append(codes, params...)
}

// table is the code book of a 4-bit kind.
func table(kind format.DType) *[16]float32 {
	if kind == format.SF4Block {
		return &quantize.SF4Table
	}
	return &quantize.NF4Table
}

// awkward returns n float16 values that visit what quantization must get
// right: rows of very different scales (down to float16 subnormals and up to
// 60000), exact zeros of both signs, repeated values and constant runs.
func awkward(seed uint64, n int) []uint16 {
	r := rand.New(rand.NewPCG(seed, 99))
	out := make([]uint16, n)
	scale := 1.0
	for i := range out {
		if i%97 == 0 {
			scale = math.Ldexp(1, r.IntN(37)-25) // 2⁻²⁵ … 2¹¹
		}
		v := r.NormFloat64() * scale
		switch r.IntN(50) {
		case 0:
			v = 0
		case 1:
			v = math.Copysign(0, -1)
		case 2:
			v = 60000 * float64(1-2*r.IntN(2))
		case 3:
			if i > 0 {
				out[i] = out[i-1]
				continue
			}
		}
		if i%1000 >= 900 && i%1000 < 1000 && i/1000%3 == 0 {
			v = 1.5 // constant runs
		}
		out[i] = format.F32ToF16(float32(v))
	}
	return out
}

func TestEncodeMatchesReference(t *testing.T) {
	for _, kind := range []format.DType{format.Int8Block, format.NF4Block, format.SF4Block} {
		for _, n := range []int{1, 2, 3, 63, 64, 65, 127, 128, 129, 1000, 4097, 300001} {
			src := awkward(uint64(n), n)
			got, err := quantize.Encode(kind, src)
			if err != nil {
				t.Fatal(err)
			}
			if want := refEncode(kind, src); !bytes.Equal(got, want) {
				i := 0
				for got[i] == want[i] {
					i++
				}
				t.Fatalf("%v n=%d: byte %d = %#x, reference %#x", kind, n, i, got[i], want[i])
			}
		}
	}
}

// TestEncodeExhaustive quantizes, for a range of block parameters, every
// float16 value that fits in the block (each block carries its parameters
// as its first values) and compares with the reference transcription.
func TestEncodeExhaustive(t *testing.T) {
	// NF4: absmax from the smallest subnormal to the largest float16.
	var src []uint16
	for _, a := range []uint16{0x0001, 0x0003, 0x03ff, 0x0400, 0x1234, 0x2e66, 0x3bb7, 0x3c00, 0x3c01, 0x4d2f, 0x7bff} {
		var vals []uint16
		for h := 0; h < 0x10000; h++ {
			if uint16(h)&0x7FFF <= a {
				vals = append(vals, uint16(h))
			}
		}
		for i := 0; i < len(vals); i += format.NF4BlockSize - 1 {
			src = append(src, a)
			src = append(src, vals[i:min(i+format.NF4BlockSize-1, len(vals))]...)
			for len(src)%format.NF4BlockSize != 0 {
				src = append(src, 0)
			}
		}
	}
	for _, kind := range []format.DType{format.NF4Block, format.SF4Block} {
		if got, want := mustEncode(t, kind, src), refEncode(kind, src); !bytes.Equal(got, want) {
			t.Fatalf("%v byte %d differs from the reference", kind, firstDiff(got, want))
		}
	}
	// Int8: (min, max) pairs of several spans, every value between them.
	src = src[:0]
	for _, mm := range [][2]uint16{{0x0000, 0x0005}, {0x8400, 0x0400}, {0xbc00, 0x3c00}, {0x0000, 0x5bf8}, {0xc500, 0x4900}, {0xfbff, 0x7bff}, {0x3555, 0x3556}} {
		lo, hi := mm[0], mm[1]
		var vals []uint16
		for h := 0; h < 0x10000; h++ {
			if h&0x7C00 != 0x7C00 {
				v := format.F16ToF32(uint16(h))
				if v >= format.F16ToF32(lo) && v <= format.F16ToF32(hi) {
					vals = append(vals, uint16(h))
				}
			}
		}
		for i := 0; i < len(vals); i += format.Int8BlockSize - 2 {
			src = append(src, lo, hi)
			src = append(src, vals[i:min(i+format.Int8BlockSize-2, len(vals))]...)
			for len(src)%format.Int8BlockSize != 0 {
				src = append(src, lo)
			}
		}
	}
	if got, want := mustEncode(t, format.Int8Block, src), refEncode(format.Int8Block, src); !bytes.Equal(got, want) {
		t.Fatalf("Int8 byte %d differs from the reference", firstDiff(got, want))
	}
}

func mustEncode(t *testing.T, kind format.DType, src []uint16) []byte {
	t.Helper()
	b, err := quantize.Encode(kind, src)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncodeIsNearest checks the codes against the exact objective in
// float64: Int8 codes within half a step (plus float32 slack) of
// 255·(v−min)/(max−min); NF4 codes nearest to v/absmax in the table.
func TestEncodeIsNearest(t *testing.T) {
	src := awkward(5, 200000)
	b8, _ := quantize.Encode(format.Int8Block, src)
	for i, h := range src {
		p := b8[len(src)+i/128*4:]
		mn, mx := float64(format.F16ToF32(le16(p))), float64(format.F16ToF32(le16(p[2:])))
		if mx == mn {
			if b8[i] != 0 {
				t.Fatalf("element %d: constant block, code %d", i, b8[i])
			}
			continue
		}
		exact := 255 * (float64(format.F16ToF32(h)) - mn) / (mx - mn)
		if d := math.Abs(float64(b8[i]) - exact); d > 0.5+1e-4 { // float32 steps: relative 2⁻²³ of ≤ 255
			t.Fatalf("element %d: code %d, exact %v", i, b8[i], exact)
		}
	}
	for _, kind := range []format.DType{format.NF4Block, format.SF4Block} {
		checkNearest4(t, kind, src)
	}
}

// checkNearest4 checks that every 4-bit code is the table value nearest
// to v/absmax.
func checkNearest4(t *testing.T, kind format.DType, src []uint16) {
	tab := table(kind)
	b4, _ := quantize.Encode(kind, src)
	codes := (len(src) + 1) / 2
	for i, h := range src {
		a := float64(format.F16ToF32(le16(b4[codes+i/64*2:])))
		c := b4[i/2] >> (4 * (i % 2)) & 15
		if a == 0 {
			if c != 7 {
				t.Fatalf("element %d: zero block, code %d", i, c)
			}
			continue
		}
		x := float64(format.F16ToF32(h)) / a
		best := math.Inf(1)
		for _, q := range tab {
			best = math.Min(best, math.Abs(float64(q)-x))
		}
		if d := math.Abs(float64(tab[c]) - x); d > best+1e-6 { // float32 rounding of thresholds
			t.Fatalf("%v element %d: x=%v code %d (distance %v), nearest distance %v", kind, i, x, c, d, best)
		}
	}
}

func TestNonFiniteRefused(t *testing.T) {
	for _, kind := range []format.DType{format.Int8Block, format.NF4Block, format.SF4Block} {
		for _, bad := range []uint16{0x7C00, 0xFC00, 0x7E00, 0xFFFF} {
			src := awkward(1, 5000)
			src[3001] = bad
			src[4000] = 0x7C00
			_, err := quantize.Encode(kind, src)
			var ve *quantize.ValueError
			if !errors.As(err, &ve) || !errors.Is(err, quantize.ErrNotFinite) || ve.Index != 3001 {
				t.Errorf("%v with %#x: error %v, want element 3001 not finite", kind, bad, err)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	// Int8: min + (max−min)·q/255, NF4: table·absmax.
	b, _ := quantize.Encode(format.Int8Block, f16s(-1, 1, 0, 0.5))
	out := make([]float32, 4)
	if err := quantize.Decode(out, format.Int8Block, b); err != nil {
		t.Fatal(err)
	}
	want := []float32{-1, 1, -1 + 2*128.0/255, -1 + 2*191.0/255}
	for i := range out {
		if math.Abs(float64(out[i]-want[i])) > 1e-6 { // float32 steps
			t.Errorf("int8 %d: %v, want %v", i, out[i], want[i])
		}
	}
	b, _ = quantize.Encode(format.NF4Block, f16s(2, -2, 1))
	out = make([]float32, 3)
	if err := quantize.Decode(out, format.NF4Block, b); err != nil {
		t.Fatal(err)
	}
	if want := []float32{2, -2, 2 * 0.44070982933044434}; out[0] != want[0] || out[1] != want[1] || out[2] != want[2] {
		t.Errorf("nf4: %v, want %v", out, want)
	}
	if err := quantize.Decode(out, format.NF4Block, b[:3]); err == nil {
		t.Error("short input accepted")
	}
}

// normalF16 returns n standard-normal values (fixed seed) as float16.
func normalF16(n int) []uint16 {
	r := rand.New(rand.NewPCG(2024, 1))
	out := make([]uint16, n)
	for i := range out {
		out[i] = format.F32ToF16(float32(r.NormFloat64()))
	}
	return out
}

// TestQuality compares with bitsandbytes' published errors for NF4 with
// block 64 on a 1024×1024 standard-normal matrix (tests/test_functional.py:
// mean |A−deq(q(A))| 0.072792 and mean of |A−deq(q(A))|/(|A|+1e-8) 0.203299).
func TestQuality(t *testing.T) {
	src := normalF16(1024 * 1024)
	measure := func(kind format.DType) (float64, float64) {
		b, err := quantize.Encode(kind, src)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float32, len(src))
		if err := quantize.Decode(out, kind, b); err != nil {
			t.Fatal(err)
		}
		var e, re float64
		for i, h := range src {
			x := float64(format.F16ToF32(h))
			d := math.Abs(x - float64(out[i]))
			e += d
			re += d / (math.Abs(x) + 1e-8)
		}
		return e / float64(len(src)), re / float64(len(src))
	}
	e, re := measure(format.NF4Block)
	t.Logf("NF4: mean |error| %.6f, mean relative error %.6f", e, re)
	if math.Abs(e/0.072792-1) > 0.02 || math.Abs(re/0.203299-1) > 0.02 { // within 2%
		t.Errorf("NF4 errors %.6f, %.6f; bitsandbytes 0.072792, 0.203299", e, re)
	}
	// SF4 (recorded in BENCHMARKS.md) spends codes on tails that normal
	// data seldom reaches: somewhat more absolute error than NF4 here, of
	// the same order, and less relative error.
	es, res := measure(format.SF4Block)
	t.Logf("SF4: mean |error| %.6f, mean relative error %.6f", es, res)
	if es < e || es > 1.1*e || res > re {
		t.Errorf("SF4 errors %.6f, %.6f; want within 1–1.1 × NF4's mean |error| and below its relative error", es, res)
	}
	e8, re8 := measure(format.Int8Block)
	t.Logf("Int8: mean |error| %.6f, mean relative error %.6f", e8, re8)
	// A step is about range/255 ≈ 5.5σ/255 ≈ 0.022; the mean error of
	// rounding is a quarter step ≈ 0.0054.
	if e8 > 0.0065 || e8 > e/10 {
		t.Errorf("Int8 mean |error| %.6f, want ≈ 0.005", e8)
	}
}

func TestToFloat16(t *testing.T) {
	f32 := func(vals ...float32) []byte {
		var b []byte
		for _, v := range vals {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	got, err := quantize.ToFloat16(f32(1, -2.5, 65504, 1e-5), format.F32, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint16{0x3c00, 0xc100, 0x7bff, 0x00a8}; !equal16(got, want) {
		t.Errorf("F32: % x, want % x", got, want)
	}
	// BF16 0x3f81 = 1.0078125 → float16 0x3c08 (exact).
	got, err = quantize.ToFloat16([]byte{0x81, 0x3f}, format.BF16, 1)
	if err != nil || !equal16(got, []uint16{0x3c08}) {
		t.Errorf("BF16: % x, %v", got, err)
	}
	for _, tt := range []struct {
		v    float32
		want error
	}{{65520, quantize.ErrOutOfRange}, {float32(math.Inf(-1)), quantize.ErrNotFinite}, {float32(math.NaN()), quantize.ErrNotFinite}} {
		_, err := quantize.ToFloat16(f32(0, tt.v), format.F32, 2)
		var ve *quantize.ValueError
		if !errors.Is(err, tt.want) || !errors.As(err, &ve) || ve.Index != 1 {
			t.Errorf("%v: error %v, want %v at element 1", tt.v, err, tt.want)
		}
	}
	if _, err := quantize.ToFloat16(make([]byte, 3), format.F16, 2); err == nil {
		t.Error("short F16 input accepted")
	}
}

func equal16(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
