package main

import (
	"fmt"
	"io"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/gpu"
)

// openDevice resolves --device, says on w which device it chose, and
// returns the GPU (nil for the CPU). The caller closes a non-nil device.
func openDevice(choice string, w io.Writer) (*gpu.Device, error) {
	c, err := device.ParseChoice(choice)
	if err != nil {
		return nil, fmt.Errorf("--%w", err)
	}
	d, which, err := device.Open(c)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(w, "device:", which)
	return d, nil
}
