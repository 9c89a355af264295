package quantize

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/rwkvkit/rwkvkit/format"
)

// Dequantized returns src with every Int8Block and NF4Block tensor replaced
// by a lazy float32 tensor of its dequantized values (same name and shape);
// the others are src's own. Each is decoded when opened, one at a time.
func Dequantized(src *format.Source) (*format.Source, error) {
	out := src.Derive()
	for _, t := range src.Tensors {
		if !t.DType.Quantized() {
			out.Tensors = append(out.Tensors, t)
			continue
		}
		t := t
		dt, err := format.NewTensor(t.Name, format.F32, t.Shape, func() (io.ReadCloser, error) {
			b, err := t.Bytes()
			if err != nil {
				return nil, err
			}
			n := t.Len()
			if n > math.MaxInt/4 {
				return nil, fmt.Errorf("quantize: tensor %q: too large", t.Name)
			}
			vals := make([]float32, n)
			if err := Decode(vals, t.DType, b); err != nil {
				return nil, fmt.Errorf("quantize: %w", format.TensorErr(t.Name, err))
			}
			raw := make([]byte, 4*n)
			for i, v := range vals {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
			}
			return format.Computed(raw), nil
		})
		if err != nil {
			return nil, err
		}
		out.Tensors = append(out.Tensors, dt)
	}
	return out, nil
}
