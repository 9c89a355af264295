package quantize

import (
	"unsafe"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/format"
)

// FillInput uploads data (at most one chunk) into g's input buffer.
func FillInput(g *GPU, data []uint16) error {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 2*len(data))
	return g.d.Upload(g.in, 0, b[:len(b)&^3])
}

// RunKernel runs the kind kernel over the first n elements of the input
// buffer and waits for it.
func RunKernel(g *GPU, kind format.DType, n int) error {
	if err := g.setCount(n); err != nil {
		return err
	}
	err := g.d.Submit(func(enc *wgpu.CommandEncoder) error {
		return g.dispatch(enc, kind, n)
	})
	g.d.Wait()
	return err
}

// SetGridLimit makes g lay out dispatches of more than x workgroups in 2-D
// grids at most x wide.
func SetGridLimit(g *GPU, x uint32) { g.gridX = x }

// CopyInput copies the first n elements of the input buffer on the device
// and waits for it.
func CopyInput(g *GPU, n int) error {
	size := uint64(2*n) &^ 3
	err := g.d.Submit(func(enc *wgpu.CommandEncoder) error {
		return enc.CopyBufferToBuffer(g.in, 0, g.scratch(size), 0, size)
	})
	g.d.Wait()
	return err
}

func (g *GPU) scratch(size uint64) *wgpu.Buffer {
	for _, b := range g.bufs {
		if b.GetSize() >= size && b != g.in {
			return b
		}
	}
	b, _ := g.d.Storage("scratch", size)
	g.bufs = append(g.bufs, b)
	return b
}

// StudentT5Quantile and StudentT5CDF expose the SF4 table's distribution.
var (
	StudentT5Quantile = studentT5Quantile
	StudentT5CDF      = studentT5CDF
)
