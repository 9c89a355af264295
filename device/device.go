// Package device decides where rwkvkit computes: on a GPU (through
// Vulkan, package gpu) or on the CPU. A [Choice] is what a user asks for;
// [Open] turns it into an open GPU, or none for the CPU, and says which.
package device

import (
	"errors"
	"fmt"

	"github.com/rwkvkit/rwkvkit/gpu"
)

// A Choice is where the user wants work to run.
type Choice string

const (
	// Auto uses a real GPU when one answers and the CPU otherwise.
	Auto Choice = "auto"
	// CPU never opens a GPU.
	CPU Choice = "cpu"
	// GPU requires one: without it, Open fails.
	GPU Choice = "gpu"
)

// Choices lists the valid choices, Auto first.
var Choices = []Choice{Auto, CPU, GPU}

// ParseChoice reads "auto", "cpu" or "gpu".
func ParseChoice(s string) (Choice, error) {
	for _, c := range Choices {
		if string(c) == s {
			return c, nil
		}
	}
	return "", fmt.Errorf("device %q: want auto, cpu or gpu", s)
}

// Open returns the GPU that c asks for, or nil for the CPU, with a line
// saying which was chosen ("GPU NVIDIA H200 (vulkan, discrete-gpu)", "CPU",
// "CPU (no GPU answered)"). Auto means a real GPU or the CPU: it never
// takes a software adapter (lavapipe, which is slower than the CPU code),
// and falls back to the CPU when no adapter exists; any other GPU failure
// is returned. GPU takes whatever adapter answers. The caller closes a
// non-nil device.
func Open(c Choice) (*gpu.Device, string, error) {
	switch c {
	case CPU:
		return nil, "CPU", nil
	case GPU, Auto:
		d, err := gpu.Open()
		if err == nil {
			if c == Auto && d.Info().Software() {
				name := d.Info().Name
				d.Close()
				return nil, fmt.Sprintf("CPU (the only GPU, %s, is software Vulkan on the CPU)", name), nil
			}
			return d, "GPU " + d.Info().String(), nil
		}
		if c == GPU || !errors.Is(err, gpu.ErrNoAdapter) {
			return nil, "", err
		}
		return nil, "CPU (no GPU answered)", nil
	}
	_, err := ParseChoice(string(c))
	return nil, "", err
}
