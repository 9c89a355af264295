package format

import (
	"bytes"
	"io"
	"math"
	"runtime"
	"testing"
)

// A cast's memory follows its tensor: an empty or small tensor costs a few
// hundred bytes to open, read and close, not a 64 Ki-element buffer, so a
// file of a million empty tensors converts in memory and time that follow
// its size.
func TestCastCostFollowsTensor(t *testing.T) {
	const n = 5000
	src := &Source{}
	for i := range n {
		shape := []int64{0}
		if i%2 == 1 {
			shape = []int64{3}
		}
		tn, err := NewTensor("t", F32, shape, BytesOpener(make([]byte, 4*shape[0])))
		if err != nil {
			t.Fatal(err)
		}
		src.Tensors = append(src.Tensors, tn)
	}
	cast, err := CastF16(src)
	if err != nil {
		t.Fatal(err)
	}
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	for _, tn := range cast.Tensors {
		r, err := tn.Open()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || int64(len(got)) != tn.Size() {
			t.Fatalf("read %d bytes (%v), want %d", len(got), err, tn.Size())
		}
		r.Close()
	}
	runtime.ReadMemStats(&b)
	if per := (b.TotalAlloc - a.TotalAlloc) / n; per > 1024 {
		t.Errorf("%d bytes allocated per small tensor cast", per)
	}
}

// Casts of large tensors reuse their buffers, and a cast reads the same
// values whether its buffers are new or reused.
func TestCastPooledBuffers(t *testing.T) {
	vals := make([]byte, 4*(castChunk*2+5))
	for i := 0; i < len(vals); i += 4 {
		v := math.Float32bits(float32(i/4) * 0.25)
		vals[i], vals[i+1], vals[i+2], vals[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	tn, err := NewTensor("big", F32, []int64{int64(len(vals) / 4)}, BytesOpener(vals))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(vals)/2)
	if err := ConvertToF16(want, vals, F32); err != nil {
		t.Fatal(err)
	}
	cast, _ := CastF16(&Source{Tensors: []*Tensor{tn}})
	var a, b runtime.MemStats
	for i := range 4 {
		if i == 1 {
			runtime.ReadMemStats(&a)
		}
		r, err := cast.Tensors[0].Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("pass %d: cast differs (%v)", i, err)
		}
	}
	runtime.ReadMemStats(&b)
	// io.ReadAll's own buffer is the tensor's size; the cast's buffers come back from the pool.
	if per := (b.TotalAlloc - a.TotalAlloc) / 3; per > uint64(4*len(want)) {
		t.Errorf("%d bytes allocated per pass over a %d-byte cast", per, len(want))
	}
}
