//go:build amd64

package quantize

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// RWKVKIT_QUANT_KERNELS=AVX2 (or another kernel set's name, or "portable")
// makes the test binary, benchmarks included, use those kernels instead of
// the fastest ones, to measure the kernels a smaller CPU would run.
func init() {
	name := os.Getenv("RWKVKIT_QUANT_KERNELS")
	if name == "" {
		return
	}
	int8Whole, nf4Whole = nil, nil
	for _, k := range kernelSets {
		if k.name == name {
			int8Whole, nf4Whole = k.int8, k.nf4
		}
	}
	if name != "portable" && int8Whole == nil {
		panic("RWKVKIT_QUANT_KERNELS=" + name + ": no such kernels on this CPU")
	}
}

// forEachKernelSet runs f as a subtest for each kernel set this CPU has.
func forEachKernelSet(t *testing.T, f func(t *testing.T, k kernelSet)) {
	if len(kernelSets) == 0 {
		t.Skip("no vector kernels on this CPU")
	}
	for _, k := range kernelSets {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

// encodeBoth quantizes src with the kernels k and with the portable Go code
// and fails unless bytes and errors are identical.
func encodeBoth(t *testing.T, k kernelSet, name string, kind format.DType, src []uint16) {
	t.Helper()
	i8, n4 := int8Whole, nf4Whole
	defer func() { int8Whole, nf4Whole = i8, n4 }()
	int8Whole, nf4Whole = k.int8, k.nf4
	vec, vecErr := Encode(kind, src)
	int8Whole, nf4Whole = nil, nil
	gold, goldErr := Encode(kind, src)
	if fmt.Sprint(vecErr) != fmt.Sprint(goldErr) {
		t.Fatalf("%s %v: %s error %v, portable %v", name, kind, k.name, vecErr, goldErr)
	}
	if !bytes.Equal(vec, gold) {
		i := 0
		for vec[i] == gold[i] {
			i++
		}
		t.Fatalf("%s %v (%d elements): %s byte %d is %#x, portable %#x", name, kind, len(src), k.name, i, vec[i], gold[i])
	}
}

// finiteF16 lists every finite float16, −0 included.
func finiteF16() []uint16 {
	var out []uint16
	for h := range 0x10000 {
		if h&0x7C00 != 0x7C00 {
			out = append(out, uint16(h))
		}
	}
	return out
}

func TestVectorMatchesPortable(t *testing.T) {
	all := finiteF16()
	r := rand.New(rand.NewPCG(1, 2))
	shuffled := append([]uint16(nil), all...)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

	// Blocks that keep a narrow range: each value with its neighbours.
	var narrow []uint16
	for i := 0; i+8 <= len(all); i += 8 {
		for j := range 8 {
			narrow = append(narrow, all[i+(j*5)%8])
		}
	}

	// Int8 ties: min 0, max 255 gives s = 1 and (v − min)·s = q + ½ exactly.
	var ties []uint16
	for q := range 255 {
		if q%126 == 0 {
			ties = append(ties, format.F32ToF16(0), format.F32ToF16(255))
		}
		ties = append(ties, format.F32ToF16(float32(q)+0.5))
	}
	// NF4 ties: for every absmax where some threshold m_k·a is a float16
	// (30 of them), and for a few others, the float16 values at and around
	// each threshold.
	for a := uint16(1); a < 0x7C00; a++ {
		af := format.F16ToF32(a)
		tie := false
		for _, m := range NF4Midpoints {
			tie = tie || format.F16ToF32(format.F32ToF16(m*af)) == m*af
		}
		switch a {
		case 0x0001, 0x0009, 0x03ff, 0x0400, 0x2e66, 0x3c00, 0x3c01, 0x5555, 0x7bff:
			tie = true
		}
		if !tie {
			continue
		}
		blk := []uint16{a}
		for _, m := range NF4Midpoints {
			th := format.F32ToF16(m * af)
			for d := -1; d <= 1; d++ {
				if h := int(th) + d; h >= 0 && h < 0x10000 && uint16(h)&0x7FFF <= a {
					blk = append(blk, uint16(h))
				}
			}
		}
		for len(blk)%format.NF4BlockSize != 0 {
			blk = append(blk, 0x8000)
		}
		// Every rotation, so that each value meets every vector lane.
		for r := range blk {
			ties = append(ties, blk[r:]...)
			ties = append(ties, blk[:r]...)
		}
	}

	special := func(n int, vals ...uint16) []uint16 {
		out := make([]uint16, n)
		for i := range out {
			out[i] = vals[i%len(vals)]
		}
		return out
	}
	cases := []struct {
		name string
		src  []uint16
	}{
		{"every finite float16, in order", all},
		{"every finite float16, shuffled", shuffled},
		{"neighbours", narrow},
		{"ties", ties},
		{"zeros", special(1000, 0)},
		{"negative zeros", special(1000, 0x8000)},
		{"signed zeros", special(1000, 0x8000, 0, 0x8000)},
		{"negative up to −0", special(1000, 0x8000, 0xbc00, 0x8001)},
		{"positive from −0", special(1000, 0x8000, 0x3c00, 0x0001)},
		{"constant", special(1000, 0x3e00)},
		{"constant negative", special(1000, 0xfbff)},
		{"extremes", special(1000, 0xfbff, 0x7bff)},
		{"subnormals", special(1000, 0x0001, 0x83ff, 0x0200, 0x8000)},
	}
	forEachKernelSet(t, func(t *testing.T, k kernelSet) {
		for _, c := range cases {
			for _, kind := range []format.DType{format.Int8Block, format.NF4Block, format.SF4Block} {
				encodeBoth(t, k, c.name, kind, c.src)
				// Partial last blocks and odd lengths.
				for _, n := range []int{1, 2, 63, 64, 65, 127, 128, 129, 191, 255, 257, 1001} {
					if n <= len(c.src) {
						encodeBoth(t, k, fmt.Sprintf("%s[:%d]", c.name, n), kind, c.src[:n])
						encodeBoth(t, k, fmt.Sprintf("%s[%d:]", c.name, n), kind, c.src[n:])
					}
				}
			}
		}
	})
}

// TestVectorNonFinite puts ±Inf and NaN at positions in and across blocks:
// both paths must report the same first element.
func TestVectorNonFinite(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	base := make([]uint16, 5000)
	for i := range base {
		base[i] = uint16(r.IntN(0x7C00)) | uint16(r.IntN(2))<<15
	}
	forEachKernelSet(t, func(t *testing.T, k kernelSet) {
		for _, bad := range []uint16{0x7C00, 0xFC00, 0x7C01, 0x7E00, 0xFFFF, 0x7FFF} {
			for _, pos := range [][]int{{0}, {1}, {63}, {64}, {127}, {128}, {129}, {4999}, {4096, 300}, {1000, 1001}, {2500, 4999}} {
				src := append([]uint16(nil), base...)
				for _, p := range pos {
					src[p] = bad
				}
				for _, kind := range []format.DType{format.Int8Block, format.NF4Block, format.SF4Block} {
					encodeBoth(t, k, fmt.Sprintf("%#x at %v", bad, pos), kind, src)
					if _, err := Encode(kind, src); err == nil {
						t.Fatalf("%v: %#x at %v accepted", kind, bad, pos)
					}
				}
			}
		}
	})
}
