package quantize

import (
	"context"
	_ "embed"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
)

//go:embed quant.wgsl
var quantWGSL string

// Elements of one workgroup of the kernels (quant.wgsl): 32 Int8 blocks or
// 128 NF4 blocks. Chunks are multiples of chunkUnit, a multiple of both
// block sizes and of two NF4 blocks, so that every chunk starts on a whole
// parameter word.
const (
	int8WGElems = 32 * format.Int8BlockSize
	nf4WGElems  = 128 * format.NF4BlockSize
	chunkUnit   = 2048
)

// GPUOptions tune a GPU quantizer; the zero value is the default.
type GPUOptions struct {
	// ChunkBytes is the float16 input moved per step (default 16 MiB,
	// at most the device's binding limit; rounded down to 4 KiB).
	ChunkBytes int64
	// Slots is the number of chunks in flight (default 3): one being
	// filled or emptied by the CPU while the others are on the GPU.
	Slots int
}

// A GPU quantizes on a GPU device, bit-identically to the CPU. Large tensors
// go through in chunks: while the GPU quantizes one, the CPU fills the next
// into a mapped staging buffer and empties the results of an earlier one.
// A GPU is safe for concurrent use; calls are serialised.
type GPU struct {
	d      *gpu.Device
	int8k  *gpu.Kernel
	nf4k   *gpu.Kernel
	int8g  *wgpu.BindGroup
	nf4g   *wgpu.BindGroup // the 4-bit kernel with NF4's midpoints
	sf4g   *wgpu.BindGroup // and with SF4's
	bufs   []*wgpu.Buffer
	meta   *wgpu.Buffer
	in     *wgpu.Buffer
	codes  *wgpu.Buffer
	params *wgpu.Buffer
	status *wgpu.Buffer
	chunk  int // elements per chunk, a multiple of chunkUnit
	slots  []*slot
	metaN  int    // element count in meta, or −1
	gridX  uint32 // widest grid row (0: gpu.MaxWorkgroupsPerDim)

	mu sync.Mutex
}

type slot struct {
	up, down *gpu.Staging
	busy     bool
	kind     format.DType
	first, n int // the chunk's elements
}

// NewGPU prepares the kernels and buffers on d.
func NewGPU(d *gpu.Device, opt GPUOptions) (*GPU, error) {
	cb := opt.ChunkBytes
	if cb <= 0 {
		cb = 16 << 20
	}
	cb = min(cb, int64(d.MaxBinding()))
	chunk := int(cb/2) / chunkUnit * chunkUnit
	if chunk == 0 {
		return nil, fmt.Errorf("quantize: chunk of %d bytes is smaller than %d elements", cb, chunkUnit)
	}
	g := &GPU{d: d, chunk: chunk, metaN: -1}
	ok := false
	defer func() {
		if !ok {
			g.Close()
		}
	}()
	var err error
	if g.int8k, err = d.NewKernel("quant", quantWGSL, "int8"); err != nil {
		return nil, err
	}
	if g.nf4k, err = d.NewKernel("quant", quantWGSL, "nf4"); err != nil {
		return nil, err
	}
	newBuf := func(label string, size int) *wgpu.Buffer {
		if err != nil {
			return nil
		}
		var b *wgpu.Buffer
		b, err = d.Storage(label, uint64(size))
		g.bufs = append(g.bufs, b)
		return b
	}
	g.meta = newBuf("meta", 4)
	g.in = newBuf("input", 2*chunk)
	g.codes = newBuf("codes", chunk)
	g.params = newBuf("params", chunk/32)
	g.status = newBuf("status", 4)
	nf4Mids := newBuf("nf4 midpoints", 4*len(NF4Midpoints))
	sf4Mids := newBuf("sf4 midpoints", 4*len(SF4Midpoints))
	if err != nil {
		return nil, err
	}
	for _, up := range []struct {
		buf  *wgpu.Buffer
		mids *[15]float32
	}{{nf4Mids, &NF4Midpoints}, {sf4Mids, &SF4Midpoints}} {
		var mb []byte
		for _, m := range up.mids {
			mb = binary.LittleEndian.AppendUint32(mb, math.Float32bits(m))
		}
		if err := d.Upload(up.buf, 0, mb); err != nil {
			return nil, err
		}
	}
	common := []gpu.Binding{{Buffer: g.meta}, {Buffer: g.in}, {Buffer: g.codes}, {Buffer: g.params}, {Buffer: g.status}}
	if g.int8g, err = g.int8k.Bind(common...); err != nil {
		return nil, err
	}
	if g.nf4g, err = g.nf4k.Bind(append(common, gpu.Binding{Buffer: nf4Mids})...); err != nil {
		return nil, err
	}
	if g.sf4g, err = g.nf4k.Bind(append(common, gpu.Binding{Buffer: sf4Mids})...); err != nil {
		return nil, err
	}
	nslots := opt.Slots
	if nslots <= 0 {
		nslots = 3
	}
	for range nslots {
		s := &slot{}
		if s.up, err = d.NewUpload(uint64(2 * chunk)); err != nil {
			return nil, err
		}
		g.slots = append(g.slots, s)
		if s.down, err = d.NewDownload(uint64(chunk + chunk/32 + 4)); err != nil {
			return nil, err
		}
	}
	ok = true
	return g, nil
}

// Close releases the GPU resources (not the device); of a lost device,
// which nothing may call again, it only forgets them.
func (g *GPU) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.d.Err() != nil {
		g.slots, g.bufs, g.int8g, g.nf4g, g.sf4g, g.int8k, g.nf4k = nil, nil, nil, nil, nil, nil, nil
		return
	}
	for _, s := range g.slots {
		if s.up != nil {
			s.up.Release()
		}
		if s.down != nil {
			s.down.Release()
		}
	}
	g.slots = nil
	for _, b := range g.bufs {
		if b != nil {
			b.Release()
		}
	}
	g.bufs = nil
	for _, x := range []*wgpu.BindGroup{g.int8g, g.nf4g, g.sf4g} {
		if x != nil {
			x.Release()
		}
	}
	g.int8g, g.nf4g, g.sf4g = nil, nil, nil
	for _, k := range []*gpu.Kernel{g.int8k, g.nf4k} {
		if k != nil {
			k.Release()
		}
	}
	g.int8k, g.nf4k = nil, nil
}

func (g *GPU) String() string { return "GPU " + g.d.Info().String() }

// ChunkElements is the number of elements quantized per GPU step.
func (g *GPU) ChunkElements() int { return g.chunk }

// Quantize implements Quantizer.
func (g *GPU) Quantize(ctx context.Context, kind format.DType, name string, data []uint16) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.d.Lock() // the device may be shared with other GPU work
	defer g.d.Unlock()
	l, err := layoutOf(kind, len(data))
	if err != nil {
		return nil, fmt.Errorf("quantize: tensor %q: %w", name, err)
	}
	if g.int8k == nil {
		return nil, fmt.Errorf("quantize: tensor %q: GPU quantizer is closed", name)
	}
	out := make([]byte, l.size)
	if err := g.run(ctx, kind, data, out, l); err != nil {
		return nil, fmt.Errorf("quantize: tensor %q: %w", name, err)
	}
	return out, nil
}

func (g *GPU) run(ctx context.Context, kind format.DType, data []uint16, out []byte, l layout) error {
	var firstErr error
	keep := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	next := 0 // slot to use
	for first := 0; first < len(data) && firstErr == nil; first += g.chunk {
		if err := ctx.Err(); err != nil {
			keep(err)
			break
		}
		s := g.slots[next]
		next = (next + 1) % len(g.slots)
		if s.busy {
			keep(g.finish(s, out, l, data))
		}
		m := min(g.chunk, len(data)-first)
		keep(g.submit(s, kind, data[first:first+m], first))
	}
	// Drain in submission order.
	for range g.slots {
		s := g.slots[next]
		next = (next + 1) % len(g.slots)
		if s.busy {
			keep(g.finish(s, out, l, data))
		}
	}
	// Let no mapping outlive the call: a pending one pauses the garbage
	// collector (see package gpu). The next submit maps them anyway.
	for _, s := range g.slots {
		if _, err := s.up.Bytes(); err != nil {
			keep(err)
		}
	}
	return firstErr
}

// submit fills s's upload buffer with chunk (starting at element first) and
// queues the copy in, the kernel and the copies out.
func (g *GPU) submit(s *slot, kind format.DType, chunk []uint16, first int) error {
	b, err := s.up.Bytes()
	if err != nil {
		return err
	}
	parallelCopy(b, unsafe.Slice((*byte)(unsafe.Pointer(&chunk[0])), 2*len(chunk)))
	if err := s.up.Unmap(); err != nil {
		return err
	}
	if err := s.down.Unmap(); err != nil {
		return err
	}
	m := len(chunk)
	if err := g.setCount(m); err != nil {
		return err
	}
	cl, err := layoutOf(kind, m)
	if err != nil {
		return err
	}
	codeBytes := align4(cl.codeBytes)
	paramBytes := align4(cl.blocks * cl.paramBytes)
	err = g.d.Submit(func(enc *wgpu.CommandEncoder) error {
		if err := enc.CopyBufferToBuffer(s.up.Buffer(), 0, g.in, 0, uint64(align4(2*m))); err != nil {
			return err
		}
		if err := enc.ClearBuffer(g.status, 0, 4); err != nil {
			return err
		}
		if err := g.dispatch(enc, kind, m); err != nil {
			return err
		}
		down := s.down.Buffer()
		if err := enc.CopyBufferToBuffer(g.codes, 0, down, 0, uint64(codeBytes)); err != nil {
			return err
		}
		if err := enc.CopyBufferToBuffer(g.params, 0, down, uint64(g.chunk), uint64(paramBytes)); err != nil {
			return err
		}
		return enc.CopyBufferToBuffer(g.status, 0, down, uint64(g.chunk+g.chunk/32), 4)
	})
	if err != nil {
		return err
	}
	if err := s.up.Map(); err != nil {
		return err
	}
	if err := s.down.Map(); err != nil {
		return err
	}
	s.busy, s.kind, s.first, s.n = true, kind, first, m
	return nil
}

// setCount makes the kernels' element count m. Queue writes are staged and
// tracked by the driver layer, so an unchanged count (every chunk but a
// tensor's last) is not written again.
func (g *GPU) setCount(m int) error {
	if m == g.metaN {
		return nil
	}
	if err := g.d.Write(g.meta, 0, binary.LittleEndian.AppendUint32(nil, uint32(m))); err != nil {
		g.metaN = -1
		return err
	}
	g.metaN = m
	return nil
}

// dispatch records the kind kernel over m elements (the count set by
// setCount).
func (g *GPU) dispatch(enc *wgpu.CommandEncoder, kind format.DType, m int) error {
	k, group, wgElems := g.int8k, g.int8g, int8WGElems
	switch kind {
	case format.NF4Block:
		k, group, wgElems = g.nf4k, g.nf4g, nf4WGElems
	case format.SF4Block:
		k, group, wgElems = g.nf4k, g.sf4g, nf4WGElems
	}
	limit := g.gridX
	if limit == 0 {
		limit = gpu.MaxWorkgroupsPerDim
	}
	x, y := gpu.GridWithin(uint32((m+wgElems-1)/wgElems), limit)
	return gpu.DispatchXY(enc, k, group, x, y)
}

// finish waits for s's results and copies them into out.
func (g *GPU) finish(s *slot, out []byte, l layout, data []uint16) error {
	s.busy = false
	b, err := s.down.Bytes()
	if err != nil {
		return err
	}
	if st := binary.LittleEndian.Uint32(b[g.chunk+g.chunk/32:]); st != 0 {
		i := s.first + int(^st)
		return notFinite(int64(i), data[i])
	}
	cl, err := layoutOf(s.kind, s.n)
	if err != nil {
		return err
	}
	bs, _ := BlockSize(s.kind)
	codeOff := s.first
	if s.kind != format.Int8Block {
		codeOff = s.first / 2
	}
	parallelCopy(out[codeOff:codeOff+cl.codeBytes], b[:cl.codeBytes])
	pOff := l.codeBytes + s.first/bs*cl.paramBytes
	copy(out[pOff:pOff+cl.blocks*cl.paramBytes], b[g.chunk:])
	return nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// parallelCopy copies src into dst (len(src) ≤ len(dst)) on several cores
// when it is large: one core does not saturate memory bandwidth.
func parallelCopy(dst, src []byte) {
	const piece = 4 << 20
	if len(src) < 2*piece {
		copy(dst, src)
		return
	}
	workers := min(runtime.GOMAXPROCS(0), (len(src)+piece-1)/piece, 8)
	step := (len(src) + workers - 1) / workers
	var wg sync.WaitGroup
	for off := 0; off < len(src); off += step {
		end := min(off+step, len(src))
		wg.Add(1)
		go func() {
			defer wg.Done()
			copy(dst[off:end], src[off:end])
		}()
	}
	wg.Wait()
}
