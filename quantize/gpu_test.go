package quantize_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"rwkvkit/format"
	"rwkvkit/internal/gputest"
	"rwkvkit/quantize"
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

var kinds = []format.DType{format.Int8Block, format.NF4Block}

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

// TestGPULargerThanBinding quantizes a tensor larger than the device's
// storage binding limit with chunks as large as the limit allows (on lavapipe
// 128 MiB: the first chunk fills a binding and needs a 2-D grid for Int8).
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
