package lora

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// tensor makes an in-memory tensor of dtype dt holding vals, which must be
// exactly representable in dt (the test data is chosen so that no rounding
// happens before the code under test runs).
func tensor(t testing.TB, name string, dt format.DType, shape []int64, vals []float32) *format.Tensor {
	t.Helper()
	b := make([]byte, len(vals)*dt.Size())
	for i, v := range vals {
		switch dt {
		case format.F32:
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		case format.F16:
			binary.LittleEndian.PutUint16(b[2*i:], format.F32ToF16(v))
		case format.BF16:
			binary.LittleEndian.PutUint16(b[2*i:], uint16(math.Float32bits(v)>>16))
		default:
			t.Fatalf("tensor %q: dtype %v", name, dt)
		}
	}
	back := make([]float32, len(vals))
	if err := format.DecodeFloat32(back, b, dt); err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if back[i] != vals[i] && !(math.IsNaN(float64(back[i])) && math.IsNaN(float64(vals[i]))) {
			t.Fatalf("tensor %q: %v is not exact in %v", name, vals[i], dt)
		}
	}
	tt, err := format.NewTensor(name, dt, shape, format.BytesOpener(b))
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func source(ts ...*format.Tensor) *format.Source { return &format.Source{Tensors: ts} }

func mustOpen(t testing.TB, ts ...*format.Tensor) *Adapter {
	t.Helper()
	a, err := Open(source(ts...))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustMerge(t testing.TB, base *format.Source, blends ...Blend) *format.Source {
	t.Helper()
	m, err := Merge(context.Background(), base, blends, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func values(t testing.TB, src *format.Source, name string) []float32 {
	t.Helper()
	tt := src.Lookup(name)
	if tt == nil {
		t.Fatalf("no tensor %q", name)
	}
	v, err := tt.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func raw(t testing.TB, src *format.Source, name string) []byte {
	t.Helper()
	tt := src.Lookup(name)
	if tt == nil {
		t.Fatalf("no tensor %q", name)
	}
	b, err := tt.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randVals returns n values uniform in [-1, 1) rounded to dt, so that they
// are exact in dt.
func randVals(rng *rand.Rand, n int, dt format.DType) []float32 {
	v := make([]float32, n)
	for i := range v {
		x := float32(2*rng.Float64() - 1)
		switch dt {
		case format.F16:
			x = format.F16ToF32(format.F32ToF16(x))
		case format.BF16:
			x = math.Float32frombits(math.Float32bits(x) &^ 0xffff)
		}
		v[i] = x
	}
	return v
}

// seq returns start, start+step, … (n values).
func seq(n int, start, step float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = start + float32(i)*step
	}
	return v
}

// transposed returns the rows×cols matrix x transposed, computed here
// independently of the package's own helper.
func transposed(x []float32, rows, cols int) []float32 {
	out := make([]float32, len(x))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			out[j*rows+i] = x[i*cols+j]
		}
	}
	return out
}

func pattern(t testing.TB, expr string, alpha float32) Pattern {
	t.Helper()
	return Pattern{Regexp: regexp.MustCompile(expr), Alpha: alpha}
}

func f16bits(t testing.TB, src *format.Source, name string) []uint16 {
	t.Helper()
	b := raw(t, src, name)
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return out
}

func hex16(v []uint16) string { return fmt.Sprintf("%#04x", v) }
