package lora

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/gpu"
)

//go:embed lowrank.wgsl
var lowRankWGSL string

// tile is the kernel's workgroup tile (16×16 elements of w).
const tile = 16

// GPU is a [Backend] that computes low-rank products on a GPU, in float32.
// Each element's sum runs over k in the CPU's order, but the shader
// compiler may fuse a multiply with an add, so results may differ from
// [CPU]'s in the last bits: by at most 2·(r+2)·2⁻²⁴·(|w| + |s|·Σₖ|pₖqₖ|)
// per element, plus the smallest normal float32 where the GPU flushes
// subnormals to zero.
//
// It is safe for concurrent use (calls take turns on the device) and keeps
// its buffers between calls; Close releases them.
type GPU struct {
	mu     sync.Mutex
	d      *gpu.Device
	k      *gpu.Kernel
	bufs   [4]*wgpu.Buffer // w, p, q, params
	params []byte
	limit  uint64 // bytes per binding; 0 means the device's
}

// NewGPU compiles the merge kernel on d. The caller keeps d open while the
// GPU is used and closes it after Close.
func NewGPU(d *gpu.Device) (*GPU, error) {
	k, err := d.NewKernel("lora", lowRankWGSL, "main")
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	return &GPU{d: d, k: k, params: make([]byte, 16)}, nil
}

// Close releases the kernel and buffers (of a lost device, which nothing
// may call again, it only forgets them); later calls of AddLowRank fail.
func (g *GPU) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, b := range g.bufs {
		if b != nil {
			if g.d.Err() == nil {
				b.Release()
			}
			g.bufs[i] = nil
		}
	}
	if g.k != nil {
		g.k.Release()
		g.k = nil
	}
}

// buffer returns buffer slot i with at least size bytes, replacing a smaller one.
func (g *GPU) buffer(i int, size uint64) (*wgpu.Buffer, error) {
	size = max(size, 16)
	if b := g.bufs[i]; b != nil && b.GetSize() >= size {
		return b, nil
	}
	if g.bufs[i] != nil {
		g.bufs[i].Release()
		g.bufs[i] = nil
	}
	b, err := g.d.Storage(fmt.Sprintf("lora.%d", i), size)
	if err != nil {
		return nil, err
	}
	g.bufs[i] = b
	return b, nil
}

// AddLowRank implements [Backend]. Matrices larger than one storage binding
// are done in bands of rows; a q too large for one binding falls back to
// the CPU.
func (g *GPU) AddLowRank(w []float32, rows, cols, r int, p, q []float32, s float32) error {
	if err := checkLowRank(w, rows, cols, r, p, q); err != nil {
		return err
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	limit := g.limit
	if limit == 0 {
		limit = g.d.MaxBinding()
	}
	rowBytes := uint64(max(cols, r)) * 4
	if uint64(cols)*uint64(r)*4 > limit || rowBytes > limit {
		return CPU{}.AddLowRank(w, rows, cols, r, p, q, s)
	}
	band := min(rows, int(limit/rowBytes))
	g.mu.Lock()
	if g.k == nil {
		g.mu.Unlock()
		return errors.New("lora: the GPU backend is closed")
	}
	defer g.mu.Unlock()
	g.d.Lock() // the device may be shared with other GPU work
	defer g.d.Unlock()
	wb, err := g.buffer(0, uint64(band*cols)*4)
	if err != nil {
		return err
	}
	pb, err := g.buffer(1, uint64(band*r)*4)
	if err != nil {
		return err
	}
	qb, err := g.buffer(2, uint64(cols*r)*4)
	if err != nil {
		return err
	}
	prm, err := g.buffer(3, 16)
	if err != nil {
		return err
	}
	if err := g.d.Upload(qb, 0, bytesOf(q)); err != nil {
		return err
	}
	for lo := 0; lo < rows; lo += band {
		n := min(band, rows-lo)
		wpart := w[lo*cols : (lo+n)*cols]
		binary.LittleEndian.PutUint32(g.params[0:], uint32(n))
		binary.LittleEndian.PutUint32(g.params[4:], uint32(cols))
		binary.LittleEndian.PutUint32(g.params[8:], uint32(r))
		binary.LittleEndian.PutUint32(g.params[12:], math.Float32bits(s))
		for _, up := range []struct {
			b    *wgpu.Buffer
			data []byte
		}{{prm, g.params}, {wb, bytesOf(wpart)}, {pb, bytesOf(p[lo*r : (lo+n)*r])}} {
			if err := g.d.Upload(up.b, 0, up.data); err != nil {
				return err
			}
		}
		group, err := g.k.Bind(
			gpu.Binding{Buffer: wb, Size: uint64(n*cols) * 4},
			gpu.Binding{Buffer: pb, Size: uint64(n*r) * 4},
			gpu.Binding{Buffer: qb, Size: uint64(cols*r) * 4},
			gpu.Binding{Buffer: prm, Size: 16})
		if err != nil {
			return err
		}
		tiles := uint32((n+tile-1)/tile) * uint32((cols+tile-1)/tile)
		err = g.d.Submit(func(enc *wgpu.CommandEncoder) error { return gpu.Dispatch(enc, g.k, group, tiles) })
		group.Release()
		if err != nil {
			return err
		}
		if err := g.d.Download(bytesOf(wpart), wb, 0); err != nil {
			return err
		}
	}
	return nil
}

// bytesOf views float32s as their bytes. The GPU reads little-endian
// float32, and every platform the GPU layer builds for is little-endian.
func bytesOf(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}
