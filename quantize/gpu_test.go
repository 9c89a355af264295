package quantize_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
	"github.com/rwkvkit/rwkvkit/quantize"
)

func newGPU(t testing.TB, opt quantize.GPUOptions) *quantize.GPU {
	t.Helper()
	d := gputest.Device(t)
	g, err := quantize.NewGPU(d, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

var kinds = []format.DType{format.Int8Block, format.NF4Block, format.SF4Block}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestGPUMatchesCPU quantizes awkward data on both devices and wants the
// same bytes. A small chunk (6144 elements) makes most tensors span several
// chunks and cycle through every staging slot.
func TestGPUMatchesCPU(t *testing.T) {
	g := newGPU(t, quantize.GPUOptions{ChunkBytes: 12 << 10})
	if g.ChunkElements() != 6144 {
		t.Fatalf("chunk %d elements, want 6144", g.ChunkElements())
	}
	shapes := [][2]int{{1, 1}, {1, 2}, {1, 3}, {1, 63}, {1, 65}, {1, 127}, {1, 129}, {1, 4097},
		{7, 129}, {3, 64}, {6144, 1}, {1, 6145}, {3, 2049}, {64, 1000}, {333, 333}}
	ctx := context.Background()
	for i, sh := range shapes {
		src := awkward(uint64(i+10), sh[0]*sh[1])
		for _, kind := range kinds {
			want, err := quantize.CPU{}.Quantize(ctx, kind, "w", src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.Quantize(ctx, kind, "w", src)
			if err != nil {
				t.Fatalf("%v %v: %v", kind, sh, err)
			}
			if !bytes.Equal(got, want) {
				j := firstDiff(got, want)
				t.Fatalf("%v %v (%d bytes): byte %d GPU %#x, CPU %#x", kind, sh, len(want), j, got[j], want[j])
			}
		}
	}
}

// sameAsCPU quantizes src with g and with the CPU and wants the same bytes.
func sameAsCPU(t *testing.T, g *quantize.GPU, what string, src []uint16) {
	t.Helper()
	ctx := context.Background()
	for _, kind := range kinds {
		want, err := quantize.CPU{}.Quantize(ctx, kind, "w", src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.Quantize(ctx, kind, "w", src)
		if err != nil {
			t.Fatalf("%v %s: %v", kind, what, err)
		}
		if !bytes.Equal(got, want) {
			j := firstDiff(got, want)
			t.Fatalf("%v %s (%d elements): byte %d GPU %#x, CPU %#x", kind, what, len(src), j, got[j], want[j])
		}
	}
}

// TestGPUEdgeValues covers every finite float16 (the kernels widen them with
// integer operations), exact Int8 rounding ties and values next to every
// NF4 threshold for absmax values across the whole float16 range, where the
// kernel compares float16 keys with thresholds rounded to float16.
func TestGPUEdgeValues(t *testing.T) {
	g := newGPU(t, quantize.GPUOptions{ChunkBytes: 1 << 20})
	var all []uint16
	for h := range 1 << 16 {
		if h&0x7C00 != 0x7C00 {
			all = append(all, uint16(h))
		}
	}
	shuffled := append([]uint16(nil), all...)
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(shuffled), func(i, j int) {
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	})
	// Int8 blocks with min 0 and max 2^e·510: s = 2^-e/2, so odd multiples
	// of 2^e quantize to exact halves (q = roundHalfEven).
	var ties []uint16
	for e := -14; e <= 6; e++ {
		scale := float32(math.Ldexp(1, e))
		block := []uint16{0, format.F32ToF16(510 * scale)}
		for v := 1; len(block) < format.Int8BlockSize; v += 2 {
			block = append(block, format.F32ToF16(float32(v)*scale))
		}
		ties = append(ties, block...)
	}
	// NF4 and SF4 blocks of absmax a (first value, either sign) and the
	// float16 values nearest to each threshold m_k·a and their neighbours,
	// for every finite a.
	nearThresholds := func(mids *[15]float32) []uint16 {
		var near []uint16
		for ah := uint16(1); ah < 0x7C00; ah++ {
			a := format.F16ToF32(ah)
			block := []uint16{ah | (ah%2)<<15}
			for _, m := range mids {
				h := format.F32ToF16(m * a)
				sign, mag := h&0x8000, h&0x7FFF
				block = append(block, sign|max(mag, 1)-1, h, sign|min(mag+1, ah), h^0x8000)
			}
			for len(block) < format.NF4BlockSize {
				block = append(block, block[len(block)%61])
			}
			near = append(near, block...)
		}
		return near
	}
	for _, c := range []struct {
		what string
		src  []uint16
	}{{"every float16 in order", all}, {"every float16 shuffled", shuffled}, {"Int8 ties", ties},
		{"NF4 thresholds", nearThresholds(&quantize.NF4Midpoints)}, {"SF4 thresholds", nearThresholds(&quantize.SF4Midpoints)}} {
		sameAsCPU(t, g, c.what, c.src)
	}
}

// TestGPU2DGrid lays dispatches out in 2-D grids at most 3 workgroups wide
// (Int8 32 workgroups per chunk as 3×11, NF4 16 as 3×6: both with
// workgroups past the end) and wants the same bytes as the CPU.
func TestGPU2DGrid(t *testing.T) {
	g := newGPU(t, quantize.GPUOptions{ChunkBytes: 256 << 10})
	quantize.SetGridLimit(g, 3)
	sameAsCPU(t, g, "2-D grid", awkward(8, 2*g.ChunkElements()+4097))
}

// TestGPULargerThanBinding quantizes a tensor larger than the device's
// storage binding limit with chunks as large as the limit allows (on lavapipe
// 128 MiB: the first chunk fills a binding).
func TestGPULargerThanBinding(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about a gigabyte")
	}
	d := gputest.Device(t)
	limit := int64(d.MaxBinding())
	if limit > 256<<20 {
		// On large GPUs a binding holds gigabytes; a smaller artificial
		// chunk exercises the same splitting.
		limit = 256 << 20
	}
	g := newGPU(t, quantize.GPUOptions{ChunkBytes: limit, Slots: 2})
	n := int(limit/2) + 12345
	// Tiles of awkward data, a tile's length off the block grid so that
	// blocks differ; odd tiles flip the last mantissa bit (never making a
	// value non-finite).
	tile := awkward(77, 1<<20+3)
	src := make([]uint16, n)
	for i := 0; i < n; i += len(tile) {
		c := src[i:min(i+len(tile), n)]
		copy(c, tile)
		if i/len(tile)%2 == 1 {
			for j := range c {
				c[j] ^= 1
			}
		}
	}
	ctx := context.Background()
	for _, kind := range kinds {
		want, err := quantize.CPU{}.Quantize(ctx, kind, "big", src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.Quantize(ctx, kind, "big", src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			j := firstDiff(got, want)
			t.Fatalf("%v: %d elements in chunks of %d: byte %d GPU %#x, CPU %#x", kind, n, g.ChunkElements(), j, got[j], want[j])
		}
	}
}

func TestGPUNonFinite(t *testing.T) {
	g := newGPU(t, quantize.GPUOptions{ChunkBytes: 12 << 10})
	ctx := context.Background()
	for _, kind := range kinds {
		for _, bad := range []uint16{0x7C00, 0xFC00, 0x7E01} {
			src := awkward(3, 20000)
			src[13001] = bad // in the third chunk
			src[19000] = 0x7C00
			_, err := g.Quantize(ctx, kind, "blocks.3.att.key.weight", src)
			var ve *quantize.ValueError
			if !errors.As(err, &ve) || !errors.Is(err, quantize.ErrNotFinite) || ve.Index != 13001 {
				t.Fatalf("%v %#x: error %v, want element 13001 not finite", kind, bad, err)
			}
			_, cerr := quantize.CPU{}.Quantize(ctx, kind, "blocks.3.att.key.weight", src)
			if cerr == nil || err.Error() != cerr.Error() {
				t.Errorf("GPU error %q, CPU error %q", err, cerr)
			}
		}
		// The quantizer is usable after an error.
		src := awkward(4, 5000)
		got, err := g.Quantize(ctx, kind, "w", src)
		want, _ := quantize.Encode(kind, src)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%v after an error: %v", kind, err)
		}
	}
}

func TestGPUEmptyAndCancel(t *testing.T) {
	g := newGPU(t, quantize.GPUOptions{})
	ctx := context.Background()
	b, err := g.Quantize(ctx, format.NF4Block, "empty", nil)
	if err != nil || len(b) != 0 {
		t.Errorf("empty: %d bytes, %v", len(b), err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.Quantize(cctx, format.Int8Block, "w", awkward(1, 100)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := g.Quantize(ctx, format.F16, "w", awkward(1, 100)); err == nil {
		t.Error("F16 accepted as a quantized kind")
	}
}
