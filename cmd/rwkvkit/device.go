package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/rwkvkit/rwkvkit/gpu"
)

// openDevice resolves --device: "cpu" gives nil, "gpu" a GPU or an error,
// "auto" a GPU when one answers and nil otherwise. It says on w which it
// chose. The caller closes a non-nil device.
func openDevice(choice string, w io.Writer) (*gpu.Device, error) {
	switch choice {
	case "cpu":
		fmt.Fprintln(w, "device: CPU")
		return nil, nil
	case "gpu", "auto":
		d, err := gpu.Open()
		if err == nil {
			fmt.Fprintf(w, "device: GPU %s\n", d.Info())
			return d, nil
		}
		if choice == "gpu" || !errors.Is(err, gpu.ErrNoAdapter) {
			return nil, err
		}
		fmt.Fprintln(w, "device: CPU (no GPU answered)")
		return nil, nil
	}
	return nil, fmt.Errorf("--device %q: want auto, cpu or gpu", choice)
}
