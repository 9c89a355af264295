package model

import (
	"context"
	"errors"
	"fmt"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/gpuengine"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/runner"
)

// ErrNoGPUEngine is wrapped by Load's error when a GPU is required and the
// GPU engine does not run the model.
var ErrNoGPUEngine = errors.New("the GPU engine does not run this model")

// Load opens the model file at path and loads it into an inference engine
// on the device c names; the file is closed once the weights are loaded.
// Errors name the file. The caller closes the engine.
func Load(ctx context.Context, path string, c device.Choice) (engine.Engine, error) {
	return LoadQuantized(ctx, path, c, nil)
}

// LoadQuantized is Load quantizing the layers that rules name (web-rwkv's
// quantization at load: on the GPU for the GPU engine, else on the CPU),
// the blocks being those `rwkvkit quantize` writes.
func LoadQuantized(ctx context.Context, path string, c device.Choice, rules []quantize.Rule) (engine.Engine, error) {
	src, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	e, err := LoadSourceQuantized(ctx, src, c, rules)
	if err != nil {
		return nil, format.InFile(path, err) // read errors name the file already
	}
	return e, nil
}

// LoadSource loads the model in src into an inference engine on the device
// c names. This is where an engine is chosen: the CPU engine (package
// runner) for CPU, the GPU engine (package gpuengine) for GPU, and for Auto
// the GPU engine on a real GPU (device.Open) when it runs the model's
// version, else the CPU engine. Closing a GPU engine closes its device.
func LoadSource(ctx context.Context, src *format.Source, c device.Choice) (engine.Engine, error) {
	return LoadSourceQuantized(ctx, src, c, nil)
}

// LoadSourceQuantized is LoadSource quantizing the layers rules name.
func LoadSourceQuantized(ctx context.Context, src *format.Source, c device.Choice, rules []quantize.Rule) (engine.Engine, error) {
	var plan *quantize.Plan
	if len(rules) > 0 {
		info, err := format.Detect(src)
		if err != nil {
			return nil, err
		}
		if plan, err = quantize.NewPlan(info.Layers, rules...); err != nil {
			return nil, err
		}
	}
	cpu := func() (engine.Engine, error) {
		if plan != nil {
			q, err := quantize.Apply(ctx, src, plan, quantize.CPU{})
			if err != nil {
				return nil, err
			}
			return runner.Load(ctx, q)
		}
		return runner.Load(ctx, src)
	}
	switch c {
	case device.CPU:
		return cpu()
	case device.GPU, device.Auto:
		info, err := format.Detect(src)
		if err != nil {
			return nil, err
		}
		if err := gpuengine.Supported(info); err != nil {
			if c == device.GPU {
				return nil, fmt.Errorf("%w: %v", ErrNoGPUEngine, err)
			}
			return cpu()
		}
		d, _, err := device.Open(c)
		if err != nil {
			return nil, err
		}
		if d == nil {
			return cpu()
		}
		e, err := gpuengine.Load(ctx, d, src, &gpuengine.Options{Plan: plan})
		if err != nil {
			d.Close()
			return nil, err
		}
		return &gpuEngine{e, d}, nil
	}
	_, err := device.ParseChoice(string(c))
	return nil, err
}

// gpuEngine is a GPU engine that owns its device.
type gpuEngine struct {
	*gpuengine.Engine
	d *gpu.Device
}

func (g *gpuEngine) Close() error {
	err := g.Engine.Close()
	g.d.Close()
	return err
}

// String says where the engine runs.
func (g *gpuEngine) String() string { return "GPU " + g.d.Info().String() }
