package gpuengine

import (
	_ "embed"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/quantize"
)

//go:embed testdata/fill.wgsl
var fillWGSL string

// A synthShape is an RWKV-7 shape with the LoRA sizes Albatross's benchmark
// gives it (peer_bench.py), vocabulary 65536.
type synthShape struct {
	name          string
	embed, layers int
}

var synthShapes = []synthShape{{"0.1B", 768, 12}, {"1.5B", 2048, 24}, {"7B", 4096, 32}}

func (s synthShape) info() format.ModelInfo {
	C := s.embed
	lora := func(f float64) int { return max(32, int(math.Round(f*math.Sqrt(float64(C))/32))*32) }
	return format.ModelInfo{Version: format.V7, Layers: s.layers, Embed: C, Heads: C / 64, HeadSize: 64, Vocab: 65536, FFN: 4 * C,
		DecayLoRA: lora(2.5), ALoRA: lora(2.5), VLoRA: lora(1.7), GLoRA: lora(5)}
}

// loadSynthetic makes an engine of the shape info with random weights
// generated on the GPU, quantizable matrices stored as kind (F16, Int8Block
// or NF4Block): the sizes and memory traffic of a real model without its
// file.
func loadSynthetic(d *gpu.Device, info format.ModelInfo, kind format.DType, opt *Options) (*Engine, error) {
	var o Options
	if opt != nil {
		o = *opt
	}
	e, err := newEngine(d, info, o)
	if err != nil {
		return nil, err
	}
	d.Lock()
	defer d.Unlock()
	specs := e.specs()
	dtypes := make([]format.DType, len(specs))
	for i, s := range specs {
		dtypes[i] = format.F16
		if _, ok := quantize.QuantizableLayer(s.name); ok && kind != format.F16 {
			dtypes[i] = kind
		}
	}
	if err := e.plan(specs, dtypes, nil); err != nil {
		e.release()
		return nil, err
	}
	k, err := d.NewKernel("fill", fillWGSL, "main")
	if err != nil {
		e.release()
		return nil, err
	}
	defer k.Release()
	type fill struct {
		arena, off, n, mode int
		scale               float32
	}
	var fills []fill
	for i, s := range specs {
		if s.n > 0 {
			v := e.vecs[s.name]
			fills = append(fills, fill{v.arena, v.off, s.n, 1, 0})
			continue
		}
		m := e.mats[s.name]
		for _, p := range m.pieces {
			scale := float32(1 / math.Sqrt(float64(s.cols)))
			switch dtypes[i] {
			case format.F16:
				fills = append(fills, fill{p.arena, p.w, p.wBytes / 4, 0, scale})
			case format.Int8Block:
				fills = append(fills, fill{p.arena, p.w, p.wBytes / 4, 2, 0}, fill{p.arena, p.p, p.pBytes / 4, 3, scale})
			default:
				fills = append(fills, fill{p.arena, p.w, p.wBytes / 4, 2, 0}, fill{p.arena, p.p, (p.pBytes + 3) / 4, 4, scale})
			}
		}
	}
	uni, err := d.NewBuffer("fill parameters", uint64(256*len(fills)), wgpu.BufferUsageUniform|wgpu.BufferUsageCopyDst)
	if err != nil {
		e.release()
		return nil, err
	}
	defer uni.Release()
	all := make([]byte, 256*len(fills))
	for i, f := range fills {
		b := all[256*i:]
		for j, v := range []uint32{uint32(f.off), uint32(f.n), uint32(f.mode), uint32(i + 1), math.Float32bits(f.scale)} {
			binary.LittleEndian.PutUint32(b[4*j:], v)
		}
	}
	_, q := d.WGPU()
	if err := q.WriteBuffer(uni, 0, all); err != nil {
		e.release()
		return nil, err
	}
	for start := 0; start < len(fills); start += 256 {
		end := min(start+256, len(fills))
		var groups []*wgpu.BindGroup
		err := d.Submit(func(enc *wgpu.CommandEncoder) error {
			p := gpu.BeginPass(enc)
			for i, f := range fills[start:end] {
				g, err := k.Bind(gpu.Binding{Buffer: uni, Offset: uint64(256 * (start + i)), Size: 32}, gpu.Binding{Buffer: e.arenas[f.arena]})
				if err != nil {
					return err
				}
				groups = append(groups, g)
				x, y := gpu.Grid(uint32((f.n + 255) / 256))
				p.Dispatch(k, g, x, y)
			}
			return p.End()
		})
		d.Wait()
		for _, g := range groups {
			g.Release()
		}
		if err != nil {
			e.release()
			return nil, fmt.Errorf("filling weights: %w", err)
		}
	}
	if err := e.finishProgram(); err != nil {
		e.release()
		return nil, err
	}
	return e, nil
}
