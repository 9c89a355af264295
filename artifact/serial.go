package artifact

import (
	"io"

	"github.com/rwkvkit/rwkvkit/format"
)

// fewAtATime makes the tensors of derived that are not from's own (those a
// merge or a quantization computes) compute at most n at a time, however
// many readers open them at once (format.Prefetch and the quantizer read
// ahead). A merge and a quantization each use every core already, and each
// holds copies of its tensor (a merge a float32 one) while it runs, so
// running many together only multiplies the memory.
func fewAtATime(from, derived *format.Source, n int) error {
	own := make(map[*format.Tensor]bool, len(from.Tensors))
	for _, t := range from.Tensors {
		own[t] = true
	}
	turn := make(chan struct{}, n)
	for i, t := range derived.Tensors {
		if own[t] {
			continue
		}
		one, err := format.NewTensor(t.Name, t.DType, t.Shape, func() (io.ReadCloser, error) {
			turn <- struct{}{}
			defer func() { <-turn }()
			return t.Open()
		})
		if err != nil {
			return err
		}
		derived.Tensors[i] = one
	}
	return nil
}
