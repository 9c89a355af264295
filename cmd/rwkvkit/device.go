package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/gpu"
)

// deviceFlag is --device, checked as the flags are parsed.
type deviceFlag struct{ c device.Choice }

func (d *deviceFlag) String() string { return string(d.c) }
func (d *deviceFlag) Type() string   { return "auto|cpu|gpu" }
func (d *deviceFlag) Set(s string) error {
	c, err := device.ParseChoice(s)
	if err != nil {
		return errors.New("want auto, cpu or gpu")
	}
	d.c = c
	return nil
}

// registerDevice adds --device (default auto) to cmd, with its values
// offered by shell completion.
func registerDevice(cmd *cobra.Command, d *deviceFlag, usage string) {
	d.c = device.Auto
	cmd.Flags().Var(d, "device", usage)
	cmd.RegisterFlagCompletionFunc("device", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var cs []string
		for _, c := range device.Choices {
			cs = append(cs, string(c))
		}
		return cs, cobra.ShellCompDirectiveNoFileComp
	})
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
