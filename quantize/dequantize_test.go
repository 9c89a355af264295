package quantize

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
)

// A hand-built Int8 block (min −1, max 1) and an NF4 block (absmax 2)
// dequantize to the values the layouts define.
func TestDequantized(t *testing.T) {
	q8 := make([]byte, 3+4)
	copy(q8, []byte{0, 255, 51})
	binary.LittleEndian.PutUint16(q8[3:], format.F32ToF16(-1))
	binary.LittleEndian.PutUint16(q8[5:], format.F32ToF16(1))
	nf4 := []byte{0xf0, 0x07, 0, 0} // codes 0, 15, 7, 0
	binary.LittleEndian.PutUint16(nf4[2:], format.F32ToF16(2))
	a, _ := format.NewTensor("a", format.Int8Block, []int64{1, 3}, format.BytesOpener(q8))
	b, _ := format.NewTensor("b", format.NF4Block, []int64{4}, format.BytesOpener(nf4))
	c, _ := format.NewTensor("c", format.F16, []int64{1}, format.BytesOpener([]byte{0, 0x3c}))
	src, err := Dequantized(&format.Source{Tensors: []*format.Tensor{a, b, c}})
	if err != nil {
		t.Fatal(err)
	}
	if src.Tensors[2] != c {
		t.Error("an unquantized tensor was replaced")
	}
	want := [][]float32{{-1, 1, -1 + 2*51.0/255}, {-2, 2, 0, -2}}
	for i, w := range want {
		got, err := src.Tensors[i].Float32()
		if err != nil {
			t.Fatal(err)
		}
		for j := range w {
			if math.Abs(float64(got[j]-w[j])) > 1e-6 {
				t.Errorf("%s[%d] = %v, want %v", src.Tensors[i].Name, j, got[j], w[j])
			}
		}
	}
}
