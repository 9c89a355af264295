package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/safetensors"
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
			n, err := convertFile(cmd.Context(), in, out, force, func(written, total int64) {
				bar.ChangeMax64(total)
				bar.Set64(written)
			})
			if err != nil {
				return err
			}
			bar.Finish()
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d tensors, float16, web-rwkv layout)\n", out, n)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace OUT if it exists")
	return cmd
}

// toWebRWKVF16 is the converter: quantized tensors dequantized, web-rwkv's
// names and orientation, then a single rounding of every tensor to float16.
func toWebRWKVF16(src *format.Source) (*format.Source, error) {
	s, err := quantize.Dequantized(src)
	if err != nil {
		return nil, err
	}
	s, err = format.WebRWKV(s)
	if err != nil {
		return nil, err
	}
	return format.CastF16(s)
}

// convertFile converts the model file in to web-rwkv's float16 .st at out
// and returns the number of tensors written. Errors name the file at fault.
func convertFile(ctx context.Context, in, out string, force bool, progress func(written, total int64)) (int, error) {
	src, err := openModel(in)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	conv, err := toWebRWKVF16(src)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", in, err)
	}
	if err := safetensors.WriteFile(ctx, out, conv, force, &safetensors.Options{Progress: progress}); err != nil {
		return 0, fmt.Errorf("%s: %w", out, err)
	}
	return len(conv.Tensors), nil
}
