package quantize

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/rwkvkit/rwkvkit/format"
)

// A Quantizer turns float16 values (their bits) into kind's storage bytes.
// The CPU and the GPU quantizers return identical bytes.
type Quantizer interface {
	// Quantize quantizes data, the flat values of the tensor called name
	// (used in errors), to kind.
	Quantize(ctx context.Context, kind format.DType, name string, data []uint16) ([]byte, error)
	// String names the device ("CPU, 16 threads").
	String() string
}

// CPU quantizes on the processor, over Workers goroutines (0: GOMAXPROCS).
type CPU struct {
	Workers int
}

// Quantize implements Quantizer.
func (c CPU) Quantize(ctx context.Context, kind format.DType, name string, data []uint16) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l, err := layoutOf(kind, len(data))
	if err != nil {
		return nil, fmt.Errorf("quantize: tensor %q: %w", name, err)
	}
	dst := make([]byte, l.size)
	if err := encode(dst, kind, data, l, c.Workers); err != nil {
		return nil, fmt.Errorf("quantize: tensor %q: %w", name, err)
	}
	return dst, nil
}

func (c CPU) String() string {
	w := c.Workers
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	return fmt.Sprintf("CPU, %d threads", w)
}

// Apply returns src with every tensor that plan quantizes replaced by a lazy
// tensor of the planned kind (same name and shape); the others are src's own.
// A planned tensor is read, rounded to float16 if it is not, and quantized by
// q when it is opened, one at a time, so a writer that opens the tensors in
// order streams the model. While one tensor is being quantized, the next
// planned one is read in the background. ctx cancels the quantization of
// tensors opened later.
func Apply(ctx context.Context, src *format.Source, plan *Plan, q Quantizer) (*format.Source, error) {
	out := src.Derive()
	a := &applier{ctx: ctx, q: q, ahead: map[int]chan readResult{}}
	for _, t := range src.Tensors {
		kind, ok := plan.Kind(t.Name)
		if !ok {
			out.Tensors = append(out.Tensors, t)
			continue
		}
		if len(t.Shape) != 2 || !t.DType.Float() {
			return nil, fmt.Errorf("quantize: tensor %q: want a floating-point matrix, have %v %v", t.Name, t.DType, t.Shape)
		}
		idx := len(a.planned)
		a.planned = append(a.planned, t)
		qt, err := format.NewTensor(t.Name, kind, t.Shape, func() (io.ReadCloser, error) {
			b, err := a.quantize(idx, kind)
			if err != nil {
				return nil, err
			}
			return format.Computed(b), nil
		})
		if err != nil {
			return nil, err
		}
		if t.Region != "" {
			// The same bytes quantized alike: tied matrices stay tied.
			qt.Region = t.Region + "+" + kind.String()
		}
		out.Tensors = append(out.Tensors, qt)
	}
	return out, nil
}

type applier struct {
	ctx     context.Context
	q       Quantizer
	planned []*format.Tensor

	mu      sync.Mutex
	ahead   map[int]chan readResult // planned tensors being read ahead
	started []bool                  // read, or being read: never read ahead again
}

// readAhead is how many planned tensors are read while one is quantized:
// reading is as slow as quantizing on a GPU, and several reads overlap on a
// fast disk. Memory: this many tensors more than the one at hand.
const readAhead = 3

type readResult struct {
	data []uint16
	err  error
}

func (a *applier) quantize(idx int, kind format.DType) ([]byte, error) {
	if err := a.ctx.Err(); err != nil {
		return nil, err
	}
	data, err := a.read(idx)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	return a.q.Quantize(a.ctx, kind, a.planned[idx].Name, data)
}

// read returns tensor idx as float16, taking it from the read-ahead when it
// is being read there, and starts reading the next readAhead tensors that
// nobody has read yet. Tensors opened concurrently or out of order (behind
// format.Prefetch) are so never read twice, and no read outlives the
// opening of every tensor.
func (a *applier) read(idx int) ([]uint16, error) {
	a.mu.Lock()
	if a.started == nil {
		a.started = make([]bool, len(a.planned))
	}
	ch := a.ahead[idx]
	delete(a.ahead, idx)
	a.started[idx] = true
	for next := idx + 1; next <= idx+readAhead && next < len(a.planned); next++ {
		if a.started[next] {
			continue
		}
		a.started[next] = true
		c := make(chan readResult, 1)
		a.ahead[next] = c
		go func(t *format.Tensor) {
			d, err := Float16(t)
			c <- readResult{d, err}
		}(a.planned[next])
	}
	a.mu.Unlock()
	if ch != nil {
		r := <-ch
		return r.data, r.err
	}
	return Float16(a.planned[idx])
}
