package model

import (
	"context"
	"errors"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/runner"
)

// ErrNoGPUEngine is returned by Load when a GPU is required and this build
// has no GPU inference engine.
var ErrNoGPUEngine = errors.New("no GPU inference engine in this build")

// Load opens the model file at path and loads it into an inference engine
// on the device c names; the file is closed once the weights are loaded.
// Errors name the file. The caller closes the engine.
func Load(ctx context.Context, path string, c device.Choice) (engine.Engine, error) {
	src, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	e, err := LoadSource(ctx, src, c)
	if err != nil {
		return nil, format.InFile(path, err) // read errors name the file already
	}
	return e, nil
}

// LoadSource loads the model in src into an inference engine on the device
// c names. This is where an engine is chosen: the CPU engine (package
// runner) for CPU and Auto.
func LoadSource(ctx context.Context, src *format.Source, c device.Choice) (engine.Engine, error) {
	switch c {
	case device.CPU, device.Auto:
		return runner.Load(ctx, src)
	case device.GPU:
		return nil, ErrNoGPUEngine
	}
	_, err := device.ParseChoice(string(c))
	return nil, err
}
