package gpu

import (
	"fmt"

	"github.com/cogentcore/webgpu/wgpu"
)

// A Kernel is a compute pipeline made from one WGSL entry point, with the
// layout of its bind group 0 inferred from the shader.
type Kernel struct {
	name     string
	module   *wgpu.ShaderModule
	pipeline *wgpu.ComputePipeline
	layout   *wgpu.BindGroupLayout
	d        *Device
}

// NewKernel compiles source and makes a compute pipeline of its entry point.
// Compilation errors carry the compiler's message.
func (d *Device) NewKernel(label, source, entry string) (*Kernel, error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	mod, err := d.dev.CreateShaderModule(&wgpu.ShaderModuleDescriptor{
		Label:          label,
		WGSLDescriptor: &wgpu.ShaderModuleWGSLDescriptor{Code: source},
	})
	if err != nil {
		return nil, fmt.Errorf("gpu: kernel %s: %w", label, err)
	}
	p, err := d.dev.CreateComputePipeline(&wgpu.ComputePipelineDescriptor{
		Label:   label + "." + entry,
		Compute: wgpu.ProgrammableStageDescriptor{Module: mod, EntryPoint: entry},
	})
	if err != nil {
		mod.Release()
		return nil, fmt.Errorf("gpu: kernel %s.%s: %w", label, entry, err)
	}
	return &Kernel{name: label + "." + entry, module: mod, pipeline: p, layout: p.GetBindGroupLayout(0), d: d}, nil
}

// Release frees the kernel (on a lost device it only forgets it).
func (k *Kernel) Release() {
	if k.pipeline == nil {
		return
	}
	if k.d.Err() != nil {
		k.pipeline = nil
		return
	}
	k.layout.Release()
	k.pipeline.Release()
	k.module.Release()
	k.pipeline = nil
}

// A Binding is a byte range of a buffer bound to one @binding slot. Size 0
// binds from Offset to the end of the buffer. Offsets of storage bindings
// must be multiples of 256 (the default MinStorageBufferOffsetAlignment).
type Binding struct {
	Buffer       *wgpu.Buffer
	Offset, Size uint64
}

// Bind makes a bind group for group 0 in which @binding(i) is b[i].
func (k *Kernel) Bind(b ...Binding) (*wgpu.BindGroup, error) {
	slots := make([]uint32, len(b))
	for i := range slots {
		slots[i] = uint32(i)
	}
	return k.BindSlots(slots, b)
}

// BindSlots makes a bind group for group 0 in which @binding(slots[i]) is
// b[i]: for kernels that leave some binding numbers unused.
func (k *Kernel) BindSlots(slots []uint32, b []Binding) (*wgpu.BindGroup, error) {
	if err := k.d.Err(); err != nil {
		return nil, err
	}
	entries := make([]wgpu.BindGroupEntry, len(b))
	for i, x := range b {
		size := x.Size
		if size == 0 {
			size = x.Buffer.GetSize() - x.Offset
		}
		if size > k.d.limits.MaxStorageBufferBindingSize {
			return nil, fmt.Errorf("gpu: kernel %s: binding %d of %d bytes exceeds the device's binding limit %d", k.name, slots[i], size, k.d.limits.MaxStorageBufferBindingSize)
		}
		entries[i] = wgpu.BindGroupEntry{Binding: slots[i], Buffer: x.Buffer, Offset: x.Offset, Size: size}
	}
	g, err := k.d.dev.CreateBindGroup(&wgpu.BindGroupDescriptor{Label: k.name, Layout: k.layout, Entries: entries})
	if err != nil {
		return nil, fmt.Errorf("gpu: kernel %s: %w", k.name, err)
	}
	return g, nil
}

// MaxWorkgroupsPerDim is WebGPU's default limit on one dimension of a dispatch.
const MaxWorkgroupsPerDim = 65535

// Grid lays n workgroups out as x × y with x ≤ MaxWorkgroupsPerDim and
// x·y ≥ n, wasting fewer than y. Kernels compute their linear index as
// wid.x + wid.y * nwg.x and do nothing when it is ≥ n.
func Grid(n uint32) (x, y uint32) { return GridWithin(n, MaxWorkgroupsPerDim) }

// GridWithin is Grid with x ≤ limit instead of MaxWorkgroupsPerDim (a small
// limit lets tests exercise 2-D grids cheaply).
func GridWithin(n, limit uint32) (x, y uint32) {
	limit = max(limit, 1)
	if n <= limit {
		return max(n, 1), 1
	}
	y = (n + limit - 1) / limit
	x = (n + y - 1) / y
	return x, y
}

// Dispatch records a compute pass that runs k over n workgroups laid out by
// Grid. The pass is ended and released before Dispatch returns, as it must
// be before the encoder is finished.
func Dispatch(enc *wgpu.CommandEncoder, k *Kernel, group *wgpu.BindGroup, n uint32) error {
	x, y := Grid(n)
	return DispatchXY(enc, k, group, x, y)
}

// DispatchXY is Dispatch of an x × y grid of workgroups.
func DispatchXY(enc *wgpu.CommandEncoder, k *Kernel, group *wgpu.BindGroup, x, y uint32) error {
	pass := enc.BeginComputePass(nil)
	defer pass.Release()
	pass.SetPipeline(k.pipeline)
	pass.SetBindGroup(0, group, nil)
	pass.DispatchWorkgroups(x, y, 1)
	if err := pass.End(); err != nil {
		return fmt.Errorf("gpu: kernel %s: %w", k.name, err)
	}
	return nil
}

// Submit records commands with fn into a new encoder and submits them. It
// does not wait for them to finish (see Device.Wait and Staging.Bytes).
func (d *Device) Submit(fn func(enc *wgpu.CommandEncoder) error) error {
	if err := d.Err(); err != nil {
		return err
	}
	enc, err := d.dev.CreateCommandEncoder(nil)
	if err != nil {
		return fmt.Errorf("gpu: %w", err)
	}
	if err := fn(enc); err != nil {
		enc.Release()
		return err
	}
	cmd, err := enc.Finish(nil)
	enc.Release()
	if err != nil {
		return fmt.Errorf("gpu: %w", err)
	}
	if err := d.submit(cmd); err != nil {
		return err // nothing more is released on a lost device
	}
	cmd.Release()
	return nil
}

// A Chunk is a byte range [Off, Off+Len).
type Chunk struct{ Off, Len uint64 }

// Split cuts total bytes into consecutive chunks of at most limit bytes,
// each starting at a multiple of unit (a block of data that must not be cut,
// for example a quantization block or a workgroup's share). Every chunk but
// the last is a multiple of unit long.
func Split(total, unit, limit uint64) ([]Chunk, error) {
	if unit == 0 {
		return nil, fmt.Errorf("gpu: split: zero unit")
	}
	step := limit / unit * unit
	if step == 0 {
		return nil, fmt.Errorf("gpu: split: unit of %d bytes exceeds the limit of %d bytes", unit, limit)
	}
	var out []Chunk
	for off := uint64(0); off < total; off += step {
		out = append(out, Chunk{off, min(step, total-off)})
	}
	return out, nil
}

// A Pass records many dispatches into one compute pass: on real GPUs a
// dispatch in a pass of its own costs several times one among others
// (docs/gpu.md), so work that runs every step is recorded as one pass.
type Pass struct {
	enc  *wgpu.ComputePassEncoder
	last *Kernel
	n    int
}

// BeginPass starts a compute pass on enc.
func BeginPass(enc *wgpu.CommandEncoder) *Pass {
	return &Pass{enc: enc.BeginComputePass(nil)}
}

// Dispatch records k over an x × y grid of workgroups with group bound to
// group 0. The pipeline is set only when it changes.
func (p *Pass) Dispatch(k *Kernel, group *wgpu.BindGroup, x, y uint32) {
	if p.last != k {
		p.enc.SetPipeline(k.pipeline)
		p.last = k
	}
	p.enc.SetBindGroup(0, group, nil)
	p.enc.DispatchWorkgroups(x, y, 1)
	p.n++
}

// Dispatches is the number of dispatches recorded so far.
func (p *Pass) Dispatches() int { return p.n }

// End ends and releases the pass; the encoder can then be finished.
func (p *Pass) End() error {
	defer p.enc.Release()
	if err := p.enc.End(); err != nil {
		return fmt.Errorf("gpu: compute pass: %w", err)
	}
	return nil
}
