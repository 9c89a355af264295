package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/convert"
)

func newConvert() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "convert IN OUT",
		Short: "Convert a model, LoRA or state file to web-rwkv's float16 safetensors layout",
		Long: `Convert reads any model file rwkvkit knows (.pth zip or legacy, .st, .rkv) and writes
the float16 safetensors file web-rwkv loads, exactly as web-rwkv's convert_safetensors.py
would: renamed, lower-cased, low-rank matrices transposed, every tensor rounded once to float16.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, out := args[0], args[1]
			bar := newProgress(0, "convert")
			res, err := convert.File(cmd.Context(), in, out, &convert.Options{Force: force, Progress: barProgress(bar)})
			if err != nil {
				return err
			}
			bar.Finish()
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d tensors, float16, web-rwkv layout)\n", out, res.Tensors)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace OUT if it exists")
	return cmd
}
