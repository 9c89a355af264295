package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// f16Tensor makes an in-memory float16 tensor from float32 values.
func f16Tensor(t *testing.T, name string, shape []int64, vals []float32) *format.Tensor {
	t.Helper()
	b := make([]byte, 2*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(b[2*i:], format.F32ToF16(v))
	}
	tn, err := format.NewTensor(name, format.F16, shape, format.BytesOpener(b))
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func f32Tensor(t *testing.T, name string, shape []int64, vals []float32) *format.Tensor {
	t.Helper()
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	tn, err := format.NewTensor(name, format.F32, shape, format.BytesOpener(b))
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func f16Values(t *testing.T, tn *format.Tensor) []float32 {
	t.Helper()
	v, err := tn.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func openAll(t *testing.T, path string) map[string][]byte {
	t.Helper()
	src, err := format.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := map[string][]byte{}
	for _, tn := range src.Tensors {
		b, err := tn.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		out[tn.Name] = b
	}
	return out
}

// shapes is the shape of every tensor of the file at path, by name.
func shapes(t *testing.T, path string) map[string]string {
	t.Helper()
	src, err := format.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := map[string]string{}
	for _, tn := range src.Tensors {
		out[tn.Name] = fmt.Sprint(tn.Shape)
	}
	return out
}
