package gpuengine

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/gpu"
)

// An op is one dispatch of every pass: a kernel (or a choice of kernels by
// the pass's shape), its parameters in the uniform buffer and what it binds.
// Bind groups are made at load and remade only when the state buffers grow.
type op struct {
	name    string
	kernels []*gpu.Kernel
	groups  []*wgpu.BindGroup
	alt     [][]*wgpu.BindGroup // of a logits op with direct logits, [d−1][kernel]: download buffer d bound (groups: 0)
	params  []byte              // the kernel's uniform block
	uoff    int                 // its offset in the uniform buffer
	arena   int                 // weight arena bound at 2 (−1: none, the kernel reads no weights)
	layer   int                 // layer whose states are bound at 4 (−1: none)
	page    int                 // the page of states bound
	logits  bool                // binds the logits at 4
	head    bool                // writes them (with direct logits, the others bind a stand-in)
	rows    bool                // works on the output rows: runs once per chunk of them
	grid    func(s shape) (variant int, x, y uint32)
}

// A shape is what the grid of an op depends on: tokens, segments and output
// rows of the pass, and for a pass of long RWKV-7 segments the spans of its
// recurrence (see planSpans).
type shape struct{ T, S, R, K int }

// passWords is the size in u32 words of the description of a pass of up to
// tcap tokens (see wgsl/common.wgsl): up to tcap/2 spans of 4 words.
func passWords(tcap int) int { return 4 + 9*tcap }

// params packs u32 values into a uniform block.
func params(vals ...int) []byte {
	b := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

// pad appends zero words up to a multiple of 16 bytes (uniform structs).
func pad16(b []byte) []byte {
	for len(b)%16 != 0 {
		b = append(b, 0)
	}
	return b
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// grid2 lays n workgroups out within 65,535 per dimension.
func grid2(n int) (uint32, uint32) {
	return gpu.Grid(uint32(n))
}

// addOp appends an op to the program.
func (e *Engine) addOp(o *op) { e.prog = append(e.prog, o) }

// rebuild records the program again (the state pages changed).
func (e *Engine) rebuild() error {
	e.releaseProgram()
	e.actSize = 0
	if err := e.build(); err != nil {
		return err
	}
	return e.finishProgram()
}

func (e *Engine) releaseProgram() {
	lost := e.d.Err() != nil // nothing of a lost device is called again
	for _, o := range e.prog {
		o.releaseGroups(lost)
	}
	e.prog = nil
	if e.uniform != nil && !lost {
		e.uniform.Release()
	}
	e.uniform = nil
}

// finishProgram writes every op's parameters into one uniform buffer and
// makes the bind groups.
func (e *Engine) finishProgram() error {
	off := 0
	for _, o := range e.prog {
		o.uoff = off
		off += int(alignUp(int64(len(o.params)), 256))
	}
	buf, err := e.d.NewBuffer("parameters", uint64(max(off, 16)), wgpu.BufferUsageUniform|wgpu.BufferUsageCopyDst)
	if err != nil {
		return err
	}
	e.uniform = buf
	all := make([]byte, off)
	for _, o := range e.prog {
		copy(all[o.uoff:], o.params)
	}
	if err := e.d.Write(buf, 0, all); err != nil {
		return fmt.Errorf("gpuengine: parameters: %w", err)
	}
	return e.bindAll(false)
}

// bindAll (re)makes the bind groups: all of them, or only those of ops that
// bind states.
func (e *Engine) bindAll(statesOnly bool) error {
	for _, o := range e.prog {
		if statesOnly && o.layer < 0 {
			continue
		}
		o.releaseGroups(false)
		if o.head && e.direct {
			o.alt = make([][]*wgpu.BindGroup, len(e.down)-1)
		}
		for _, k := range o.kernels {
			g, err := e.bindOp(o, k, 0)
			for d := 1; err == nil && d <= len(o.alt); d++ {
				var a *wgpu.BindGroup
				if a, err = e.bindOp(o, k, d); err == nil {
					o.alt[d-1] = append(o.alt[d-1], a)
				}
			}
			if err != nil {
				return fmt.Errorf("gpuengine: %s: %w", o.name, err)
			}
			o.groups = append(o.groups, g)
		}
	}
	return nil
}

// releaseGroups releases the op's bind groups, every set (on a lost
// device it only forgets them), and empties them.
func (o *op) releaseGroups(lost bool) {
	for _, gs := range append([][]*wgpu.BindGroup{o.groups}, o.alt...) {
		for _, g := range gs {
			if g != nil && !lost {
				g.Release()
			}
		}
	}
	o.groups, o.alt = o.groups[:0], o.alt[:0]
}

// bindOp makes the bind group of kernel k of op o; a logits op with direct
// logits binds download buffer down.
func (e *Engine) bindOp(o *op, k *gpu.Kernel, down int) (*wgpu.BindGroup, error) {
	slots := []uint32{0, 1}
	b := []gpu.Binding{
		{Buffer: e.uniform, Offset: uint64(o.uoff), Size: uint64(len(o.params))},
		{Buffer: e.passBuf},
	}
	if o.arena >= 0 {
		slots, b = append(slots, 2), append(b, gpu.Binding{Buffer: e.arenas[o.arena]})
	}
	slots, b = append(slots, 3), append(b, gpu.Binding{Buffer: e.act})
	switch {
	case o.layer >= 0:
		slots, b = append(slots, 4), append(b, gpu.Binding{Buffer: e.states[o.page][o.layer]})
	case o.logits && e.direct && o.head:
		slots, b = append(slots, 4), append(b, gpu.Binding{Buffer: e.down[down].Buffer()})
	case o.logits && e.direct:
		// Not a download buffer: it may be mapped while this runs.
		slots, b = append(slots, 4), append(b, gpu.Binding{Buffer: e.noLogits})
	case o.logits:
		slots, b = append(slots, 4), append(b, gpu.Binding{Buffer: e.logitBuf})
	}
	return k.BindSlots(slots, b)
}

// heads is the end of the program that works on the output rows (the
// final LayerNorm and the head), which every build adds last.
func (e *Engine) heads() []*op {
	i := len(e.prog)
	for i > 0 && e.prog[i-1].rows {
		i--
	}
	return e.prog[i:]
}

// record records ops for a pass of shape s whose logits go to download
// buffer down.
//
// They go to the GPU in a few submissions of growing size, each one
// compute pass: the GPU starts on the first layers while the CPU still
// records the others (recording costs microseconds per dispatch, as much as
// the GPU spends on a small one). after is recorded at the end of the last.
func (e *Engine) record(ops []*op, s shape, down int, after func(enc *wgpu.CommandEncoder) error) error {
	first, most := submitSizes(s)
	for size := first; len(ops) > 0; size = min(2*size, most) {
		part := ops[:min(size, len(ops))]
		ops = ops[len(part):]
		last := len(ops) == 0
		err := e.d.Submit(func(enc *wgpu.CommandEncoder) error {
			p := gpu.BeginPass(enc)
			for _, o := range part {
				v, x, y := o.grid(s)
				if x == 0 || y == 0 {
					continue
				}
				g := o.groups[v]
				if down > 0 && len(o.alt) > 0 {
					g = o.alt[down-1][v]
				}
				p.Dispatch(o.kernels[v], g, x, y)
			}
			e.stats.Dispatches += p.Dispatches()
			if err := p.End(); err != nil {
				return err
			}
			if last && after != nil {
				return after(enc)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// firstSubmit and maxSubmit bound the ops of the first and of any
// submission of a pass: long submissions of slow work risk the driver's
// watchdog. A pass of at most stepTokens tokens, whose ops take
// microseconds, goes in submissions of stepSubmit[0] ops, then up to
// stepSubmit[1]: each submission costs the host tens of microseconds, and
// the last ones' cost falls where the GPU waits for them. On an H200
// (decode, tokens/s, two processes each, F16 / Int8 / NF4): at 7B, 16 then
// up to 64 ops a submission 171 / 215 / 201, 32 then 128 175 / 221 / 207,
// 48 then 192 176 / 222 / 209, 32 then 256 176 / 222 / 209, 64 then 128
// 174 / 219 / 206 (the GPU waits longer for the first); at 1.5B 439 /
// 459 / 458 with 16 and 64, 460 / 482 / 485 with 48 and 192. The whole
// step in one submission ran at 169 / 214 / 203 at 7B, the GPU idle while
// it was recorded.
var (
	firstSubmit = 16
	maxSubmit   = 64
	stepTokens  = 8
	stepSubmit  = [2]int{48, 192}
)

// submitSizes is the ops of the first and of the largest submission of a
// pass of shape s.
func submitSizes(s shape) (first, most int) {
	if s.T <= stepTokens {
		return stepSubmit[0], stepSubmit[1]
	}
	return firstSubmit, maxSubmit
}

// profile runs the program of the pass last planned one op at a time,
// waiting for each, and returns the wall time per op name (the layer
// prefix removed): a coarse per-kernel profile for devices without
// timestamp queries. The pass description must already be written.
func (e *Engine) profile(s shape) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	if err := e.reclaimDownloads(); err != nil {
		return nil, err
	}
	if err := e.d.Write(e.passBuf, 0, e.pass); err != nil {
		return nil, err
	}
	if err := e.d.Wait(); err != nil {
		return nil, err
	}
	for _, o := range e.prog {
		v, x, y := o.grid(s)
		if x == 0 || y == 0 {
			continue
		}
		t := time.Now()
		err := e.d.Submit(func(enc *wgpu.CommandEncoder) error {
			p := gpu.BeginPass(enc)
			p.Dispatch(o.kernels[v], o.groups[v], x, y)
			return p.End()
		})
		if err != nil {
			return nil, err
		}
		if err := e.d.Wait(); err != nil {
			return nil, err
		}
		out[fmt.Sprintf("%s/%d", shortName(o.name), v)] += time.Since(t)
	}
	return out, nil
}

// reclaimDownloads unmaps the download buffers, which the head binds with
// direct logits, for work recorded outside Run (a pass's mappings are
// left for the next to settle).
func (e *Engine) reclaimDownloads() error {
	for _, s := range e.down {
		if err := s.Reclaim(); err != nil {
			return err
		}
	}
	return nil
}

// profileGPU times, with GPU timestamps, the program of the pass last
// planned: whole, recorded as one pass, and then each op in a pass of its
// own (which adds a pass boundary to each). It returns the GPU time per op
// name (layer prefixes removed) and of the whole.
func (e *Engine) profileGPU(s shape) (map[string]time.Duration, time.Duration, error) {
	var ops []*op
	for _, o := range e.prog {
		if _, x, y := o.grid(s); x > 0 && y > 0 {
			ops = append(ops, o)
		}
	}
	if err := e.reclaimDownloads(); err != nil {
		return nil, 0, err
	}
	t, err := e.d.NewTimer(2 + 2*len(ops))
	if err != nil {
		return nil, 0, err
	}
	defer t.Release()
	if err := e.d.Write(e.passBuf, 0, e.pass); err != nil {
		return nil, 0, err
	}
	dispatch := func(p *gpu.Pass, o *op) {
		v, x, y := o.grid(s)
		p.Dispatch(o.kernels[v], o.groups[v], x, y)
	}
	err = e.d.Submit(func(enc *wgpu.CommandEncoder) error {
		if err := t.Stamp(enc, 0); err != nil {
			return err
		}
		p := gpu.BeginPass(enc)
		for _, o := range ops {
			dispatch(p, o)
		}
		if err := p.End(); err != nil {
			return err
		}
		if err := t.Stamp(enc, 1); err != nil {
			return err
		}
		for i, o := range ops {
			if err := t.Stamp(enc, 2+2*i); err != nil {
				return err
			}
			p := gpu.BeginPass(enc)
			dispatch(p, o)
			if err := p.End(); err != nil {
				return err
			}
			if err := t.Stamp(enc, 3+2*i); err != nil {
				return err
			}
		}
		return t.Resolve(enc)
	})
	if err != nil {
		return nil, 0, err
	}
	ts, err := t.Read()
	if err != nil {
		return nil, 0, err
	}
	out := map[string]time.Duration{}
	for i, o := range ops {
		out[shortName(o.name)] += time.Duration(ts[3+2*i] - ts[2+2*i])
	}
	return out, time.Duration(ts[1] - ts[0]), nil
}

// shortName is an op's name without its layer ("blocks.3.att.products" →
// "att.products").
func shortName(name string) string {
	if rest, ok := strings.CutPrefix(name, "blocks."); ok {
		if i := strings.Index(rest, "."); i >= 0 {
			return rest[i+1:]
		}
	}
	return name
}
