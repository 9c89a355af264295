package runner

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// f32Tensor makes an in-memory float32 tensor.
func f32Tensor(t testing.TB, name string, shape []int64, v []float32) *format.Tensor {
	t.Helper()
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	tn, err := format.NewTensor(name, format.F32, shape, format.BytesOpener(b))
	if err != nil {
		t.Fatal(err)
	}
	return tn
}
