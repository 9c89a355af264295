package quantize_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
	_ "github.com/rwkvkit/rwkvkit/safetensors"
)

func readAll(t *testing.T, tn *format.Tensor) []byte {
	t.Helper()
	b, err := tn.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestApplyTinyModels quantizes web-rwkv's converted tiny models: exactly
// the tensors web-rwkv quantizes change, to the planned kind, with the bytes
// of quantizing their float16 data.
func TestApplyTinyModels(t *testing.T) {
	// Per layer: att key/value/receptance/output (+gate from v5.2 on) and
	// ffn key/value (+receptance before v7).
	tests := []struct {
		file   string
		layers int
		count  int
	}{
		{"tiny-rwkv-4v0-660K.st", 4, 4 * 7},
		{"tiny-rwkv-5v1-730K.st", 12, 12 * 7},
		{"tiny-rwkv-5v2-730K.st", 12, 12 * 8},
		{"tiny-rwkv-6v0-1m.st", 12, 12 * 8},
		{"tiny-rwkv-7v0-834K.st", 12, 12 * 6},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, err := format.Open("../fixtures/rwkv-tiny/st/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			info, err := format.Detect(src)
			if err != nil || info.Layers != tt.layers {
				t.Fatalf("detect: %+v, %v", info, err)
			}
			plan, err := quantize.NewPlan(info.Layers,
				quantize.Rule{Kind: format.Int8Block, Layers: "all"},
				quantize.Rule{Kind: format.NF4Block, Layers: "2"})
			if err != nil {
				t.Fatal(err)
			}
			out, err := quantize.Apply(ctx, src, plan, quantize.CPU{})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Tensors) != len(src.Tensors) {
				t.Fatalf("%d tensors, want %d", len(out.Tensors), len(src.Tensors))
			}
			count := 0
			for i, qt := range out.Tensors {
				orig := src.Tensors[i]
				kind, planned := plan.Kind(orig.Name)
				if !planned {
					if qt != orig {
						t.Errorf("%s changed though not planned", orig.Name)
					}
					continue
				}
				count++
				layer, _ := quantize.QuantizableLayer(orig.Name)
				if want := map[bool]format.DType{true: format.NF4Block, false: format.Int8Block}[layer < 2]; kind != want {
					t.Errorf("%s: planned %v, want %v", orig.Name, kind, want)
				}
				if qt.Name != orig.Name || qt.DType != kind || len(qt.Shape) != 2 || qt.Shape[0] != orig.Shape[0] || qt.Shape[1] != orig.Shape[1] {
					t.Errorf("%s: %v %v, want %v %v", qt.Name, qt.DType, qt.Shape, kind, orig.Shape)
				}
				h, err := quantize.Float16(orig)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := quantize.Encode(kind, h)
				if got := readAll(t, qt); !bytes.Equal(got, want) || int64(len(got)) != qt.Size() {
					t.Errorf("%s: bytes differ from Encode", qt.Name)
				}
			}
			if count != tt.count {
				t.Errorf("%d tensors quantized, want %d", count, tt.count)
			}
		})
	}
}

// TestApplyOutOfOrder opens planned tensors in an order the read-ahead does
// not expect, and twice.
func TestApplyOutOfOrder(t *testing.T) {
	src, err := format.Open("../fixtures/rwkv-tiny/st/tiny-rwkv-7v0-834K.st")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	plan, _ := quantize.NewPlan(12, quantize.Rule{Kind: format.NF4Block, Layers: "all"})
	out, err := quantize.Apply(context.Background(), src, plan, quantize.CPU{})
	if err != nil {
		t.Fatal(err)
	}
	var planned []*format.Tensor
	for _, qt := range out.Tensors {
		if qt.DType == format.NF4Block {
			planned = append(planned, qt)
		}
	}
	first := make(map[string][]byte)
	for _, i := range []int{5, 3, 4, 4, 0, len(planned) - 1, 1} {
		b := readAll(t, planned[i])
		if prev, ok := first[planned[i].Name]; ok && !bytes.Equal(prev, b) {
			t.Errorf("%s: second read differs", planned[i].Name)
		}
		first[planned[i].Name] = b
		h, _ := quantize.Float16(src.Lookup(planned[i].Name))
		if want, _ := quantize.Encode(format.NF4Block, h); !bytes.Equal(b, want) {
			t.Errorf("%s: bytes differ from Encode", planned[i].Name)
		}
	}
}

func f32Tensor(t *testing.T, name string, shape []int64, vals []float32) *format.Tensor {
	var b []byte
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	tn, err := format.NewTensor(name, format.F32, shape, format.BytesOpener(b))
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// TestApplyConvertsAndRefuses: float32 weights are rounded to float16 before
// quantization; values beyond float16 are refused naming the tensor.
func TestApplyConvertsAndRefuses(t *testing.T) {
	vals := []float32{0.1, -0.25, 1.0 / 3, 7}
	good := f32Tensor(t, "blocks.0.att.key.weight", []int64{2, 2}, vals)
	bad := f32Tensor(t, "blocks.0.ffn.key.weight", []int64{2, 2}, []float32{1, 2, 1e6, 4})
	vec := f32Tensor(t, "blocks.0.ln1.weight", []int64{4}, vals)
	src := &format.Source{Tensors: []*format.Tensor{good, vec, bad}}
	plan, _ := quantize.NewPlan(1, quantize.Rule{Kind: format.Int8Block, Layers: "all"})
	out, err := quantize.Apply(context.Background(), src, plan, quantize.CPU{})
	if err != nil {
		t.Fatal(err)
	}
	h := make([]uint16, len(vals))
	for i, v := range vals {
		h[i] = format.F32ToF16(v)
	}
	want, _ := quantize.Encode(format.Int8Block, h)
	if got := readAll(t, out.Tensors[0]); !bytes.Equal(got, want) {
		t.Errorf("converted: % x, want % x", got, want)
	}
	if out.Tensors[1] != vec {
		t.Error("vector replaced")
	}
	_, err = out.Tensors[2].Open()
	if !errors.Is(err, quantize.ErrOutOfRange) || !strings.Contains(err.Error(), "blocks.0.ffn.key.weight") || !strings.Contains(err.Error(), "element 2") {
		t.Errorf("out of range: %v", err)
	}

	// A planned name that is not a matrix is refused up front.
	odd := f32Tensor(t, "blocks.0.att.value.weight", []int64{4}, vals)
	if _, err := quantize.Apply(context.Background(), &format.Source{Tensors: []*format.Tensor{odd}}, plan, quantize.CPU{}); err == nil {
		t.Error("vector named like a matrix accepted")
	}

	// Cancellation stops later tensors.
	ctx, cancel := context.WithCancel(context.Background())
	out, _ = quantize.Apply(ctx, src, plan, quantize.CPU{})
	cancel()
	if _, err := out.Tensors[0].Open(); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestApplyGPU quantizes a whole tiny model on the GPU and wants the CPU's
// bytes for every tensor.
func TestApplyGPU(t *testing.T) {
	g := newGPU(t, quantize.GPUOptions{ChunkBytes: 8 << 10})
	src, err := format.Open("../fixtures/rwkv-tiny/st/tiny-rwkv-6v0-1m.st")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	plan, _ := quantize.NewPlan(12,
		quantize.Rule{Kind: format.Int8Block, Layers: "0-5"},
		quantize.Rule{Kind: format.NF4Block, Layers: "6-11"})
	ctx := context.Background()
	onGPU, err := quantize.Apply(ctx, src, plan, g)
	if err != nil {
		t.Fatal(err)
	}
	onCPU, _ := quantize.Apply(ctx, src, plan, quantize.CPU{})
	for i, gt := range onGPU.Tensors {
		r, err := gt.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if want := readAll(t, onCPU.Tensors[i]); !bytes.Equal(got, want) {
			t.Errorf("%s (%v): GPU bytes differ from CPU", gt.Name, gt.DType)
		}
	}
}

// TestDequantizedModel turns a quantized model back into float32: quantized
// tensors decode to Decode's values, close to the originals; the others
// stay as they are.
func TestDequantizedModel(t *testing.T) {
	src, err := format.Open("../fixtures/rwkv-tiny/st/tiny-rwkv-5v2-730K.st")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	plan, _ := quantize.NewPlan(12,
		quantize.Rule{Kind: format.Int8Block, Layers: "0-5"},
		quantize.Rule{Kind: format.NF4Block, Layers: "6-11"})
	q, err := quantize.Apply(context.Background(), src, plan, quantize.CPU{})
	if err != nil {
		t.Fatal(err)
	}
	deq, err := quantize.Dequantized(q)
	if err != nil {
		t.Fatal(err)
	}
	for i, dt := range deq.Tensors {
		qt := q.Tensors[i]
		if !qt.DType.Quantized() {
			if dt != qt {
				t.Errorf("%s replaced", qt.Name)
			}
			continue
		}
		if dt.DType != format.F32 || dt.Len() != qt.Len() {
			t.Fatalf("%s: %v %v", dt.Name, dt.DType, dt.Shape)
		}
		got, err := dt.Float32()
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, qt.Len())
		if err := quantize.Decode(want, qt.DType, readAll(t, qt)); err != nil {
			t.Fatal(err)
		}
		orig, _ := src.Tensors[i].Float32()
		bs, _ := quantize.BlockSize(qt.DType)
		for lo := 0; lo < len(got); lo += bs {
			blk := orig[lo:min(lo+bs, len(orig))]
			mn, mx, amax := blk[0], blk[0], float32(0)
			for _, v := range blk {
				mn, mx, amax = min(mn, v), max(mx, v), max(amax, float32(math.Abs(float64(v))))
			}
			// Int8: half a step (max−min)/255, NF4: half the widest gap of
			// the table (0.3038/2) times absmax; plus float16 rounding.
			tol := 0.5*float64(mx-mn)/255 + 1e-3*float64(amax)
			if qt.DType == format.NF4Block {
				tol = 0.152*float64(amax) + 1e-3*float64(amax)
			}
			for j := range blk {
				if got[lo+j] != want[lo+j] {
					t.Fatalf("%s[%d] = %v, Decode gives %v", dt.Name, lo+j, got[lo+j], want[lo+j])
				}
				if d := math.Abs(float64(got[lo+j] - blk[j])); d > tol {
					t.Fatalf("%s[%d] = %v, original %v (tolerance %v)", dt.Name, lo+j, got[lo+j], blk[j], tol)
				}
			}
		}
	}
}

// Opening the planned tensors once each, out of order, reads each source
// tensor once: the read-ahead never reads a tensor already read, so no
// read is left running once every tensor has been opened (behind
// format.Prefetch, such a read outlived the merge that fed it).
func TestApplyReadsEachTensorOnce(t *testing.T) {
	src, err := format.Open("../fixtures/rwkv-tiny/st/tiny-rwkv-7v0-834K.st")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var mu sync.Mutex
	reads := map[string]int{}
	counted := &format.Source{}
	for _, tn := range src.Tensors {
		c, err := format.NewTensor(tn.Name, tn.DType, tn.Shape, func() (io.ReadCloser, error) {
			mu.Lock()
			reads[tn.Name]++
			mu.Unlock()
			return tn.Open()
		})
		if err != nil {
			t.Fatal(err)
		}
		counted.Tensors = append(counted.Tensors, c)
	}
	plan, _ := quantize.NewPlan(12, quantize.Rule{Kind: format.Int8Block, Layers: "all"})
	out, err := quantize.Apply(context.Background(), counted, plan, quantize.CPU{})
	if err != nil {
		t.Fatal(err)
	}
	var planned []*format.Tensor
	for _, qt := range out.Tensors {
		if qt.DType == format.Int8Block {
			planned = append(planned, qt)
		}
	}
	order := []int{0, 2, 1, 3, 6, 5, 4}
	for i := 7; i < len(planned); i++ {
		order = append(order, i)
	}
	for _, i := range order {
		readAll(t, planned[i])
	}
	time.Sleep(50 * time.Millisecond) // a stray read would have begun by now
	mu.Lock()
	defer mu.Unlock()
	for _, p := range planned {
		if n := reads[p.Name]; n != 1 {
			t.Errorf("%s read %d times", p.Name, n)
		}
	}
}

// Tensors that read the same bytes of their file (tied weights) are still
// marked as one after quantization, and apart from what they were before
// it; a tensor with no region gets none.
func TestApplyKeepsTies(t *testing.T) {
	vals := make([]float32, 4*128)
	for i := range vals {
		vals[i] = float32(i%7) - 3
	}
	a := f32Tensor(t, "blocks.0.att.key.weight", []int64{4, 128}, vals)
	b := f32Tensor(t, "blocks.1.att.key.weight", []int64{4, 128}, vals)
	c := f32Tensor(t, "blocks.0.att.value.weight", []int64{4, 128}, vals)
	a.Region, b.Region = "storage 0", "storage 0"
	plan, err := quantize.NewPlan(2, quantize.Rule{Kind: format.Int8Block, Layers: "all"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := quantize.Apply(context.Background(), &format.Source{Tensors: []*format.Tensor{a, b, c}}, plan, quantize.CPU{})
	if err != nil {
		t.Fatal(err)
	}
	qa, qb, qc := out.Lookup(a.Name), out.Lookup(b.Name), out.Lookup(c.Name)
	if qa.DType != format.Int8Block || qa.Region == "" || qa.Region != qb.Region || qa.Region == a.Region {
		t.Errorf("tied after quantization: regions %q, %q (before %q), kind %v", qa.Region, qb.Region, a.Region, qa.DType)
	}
	if qc.Region != "" {
		t.Errorf("a tensor with no region has %q after quantization", qc.Region)
	}
	if !bytes.Equal(readAll(t, qa), readAll(t, qb)) {
		t.Error("tied tensors quantize to different bytes")
	}
}
