package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rwkvkit/rwkvkit/convert"
	"github.com/rwkvkit/rwkvkit/gguf"
)

func newConvert() *cobra.Command {
	var (
		force, asJSON, noSync bool
		typ, outFormat        string
	)
	cmd := &cobra.Command{
		Use: "convert IN OUT [--format st|gguf] [--type f32|f16|q8_0]",
		Example: `  rwkvkit convert fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth tiny.st                # for web-rwkv and ai00
  rwkvkit convert fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth tiny.gguf --type q8_0  # for llama.cpp`,
		Short: "Convert a model, LoRA or state file to web-rwkv's float16 safetensors layout, or a model to llama.cpp's GGUF",
		Long: `Convert reads any model file rwkvkit knows (.pth zip or legacy, .st, .rkv, .gguf) and writes
the float16 safetensors file web-rwkv loads, exactly as web-rwkv's convert_safetensors.py
would: renamed, lower-cased, low-rank matrices transposed, every tensor rounded once to float16.
An OUT ending in .gguf (or --format gguf) gets an RWKV-6 or RWKV-7 model as the GGUF llama.cpp
runs, laid out as llama.cpp's own converter does, its matrices in --type (default f16).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, out := args[0], args[1]
			gt, err := gguf.ParseType(typ)
			if err != nil {
				return err
			}
			of, err := convert.OutputFormat(out, outFormat)
			if err != nil {
				return err
			}
			toGGUF := of == "gguf"
			if cmd.Flags().Changed("type") && !toGGUF {
				return fmt.Errorf("--type %s: only a GGUF output takes a type; this writes web-rwkv's float16 .st", typ)
			}
			bar := newProgress(0, "convert")
			res, err := convert.File(cmd.Context(), in, out, &convert.Options{Force: force, NoSync: noSync, Format: outFormat, GGUFType: gt, Progress: barProgress(bar)})
			if err != nil {
				return err
			}
			bar.Finish()
			wr := written{File: out, Format: "safetensors", Tensors: res.Tensors, Parameters: res.Params,
				InputSizeBytes: res.InputBytes, OutputSizeBytes: res.OutputBytes, BitsPerWeight: res.BitsPerWeight()}
			what := ", float16, web-rwkv layout"
			if toGGUF {
				wr.Format, what = "gguf", ", GGUF for llama.cpp, "+gt.String()
			}
			return wr.report(cmd.OutOrStdout(), cmd.ErrOrStderr(), asJSON, what)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace OUT if it exists")
	registerNoSync(cmd.Flags(), &noSync)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was written as JSON on stdout")
	cmd.Flags().StringVar(&outFormat, "format", "", "output format: st or gguf (default: from OUT's extension)")
	cmd.Flags().StringVar(&typ, "type", "f16", "GGUF only: type of the large matrices, f32, f16 or q8_0")
	return cmd
}

// registerNoSync gives a command that writes a model the --no-sync flag.
func registerNoSync(f *pflag.FlagSet, noSync *bool) {
	f.BoolVar(noSync, "no-sync", false, "return once OUT is complete, without waiting for the disk (as cp does): faster, but after a "+
		"power cut or system crash in the next half minute OUT may be missing, empty or cut short (see docs/SECURITY.md)")
}
