package main

import (
	"fmt"
	"io"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/gpu"
)

// parseDevice reads --device.
func parseDevice(s string) (device.Choice, error) {
	c, err := device.ParseChoice(s)
	if err != nil {
		return "", fmt.Errorf("--%w", err)
	}
	return c, nil
}

// openDevice opens the device c names, says on w which it chose, and
// returns the GPU (nil for the CPU) and the line naming it. The caller
// closes a non-nil device.
func openDevice(c device.Choice, w io.Writer) (*gpu.Device, string, error) {
	d, which, err := device.Open(c)
	if err != nil {
		return nil, "", err
	}
	fmt.Fprintln(w, "device:", which)
	return d, which, nil
}
