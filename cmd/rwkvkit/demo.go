package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/artifact"
	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/convert"
	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/fixtures"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
)

func newDemo() *cobra.Command {
	var keep string
	var force bool
	var dev deviceFlag
	cmd := &cobra.Command{
		Use: "demo",
		Example: `  rwkvkit demo
  rwkvkit demo --keep demo-files --device cpu`,
		Short: "Run the whole pipeline on the embedded tiny RWKV-7 model",
		Long: `Demo converts the embedded tiny RWKV-7 checkpoint to web-rwkv's .st, makes a small LoRA and
merges it, quantizes the merged model to Int8 and NF4 (on a GPU when one answers), saves each as a
.rkv artifact, loads them back, and prints how close each one stays to the float model and a few
bytes of text from each. Its files go to a temporary folder that is removed at the end, or to
--keep DIR, where the files of an earlier demo are replaced only with --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return demo(cmd.Context(), cmd.OutOrStdout(), keep, force, dev.c)
		},
	}
	cmd.Flags().StringVar(&keep, "keep", "", "write the files into DIR (created if needed) and keep them")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "with --keep, replace the files of an earlier demo in DIR")
	registerDevice(cmd, &dev, "where to merge and quantize: auto, cpu or gpu")
	return cmd
}

// demoArtifacts are the artifacts the demo builds from the merged model.
var demoArtifacts = []struct {
	label, file string
	rules       []quantize.Rule
}{
	{"float16", "merged-f16.rkv", nil},
	{"Int8", "merged-int8.rkv", []quantize.Rule{{Kind: format.Int8Block, Layers: "all"}}},
	{"NF4", "merged-nf4.rkv", []quantize.Rule{{Kind: format.NF4Block, Layers: "all"}}},
}

func demo(ctx context.Context, out io.Writer, keep string, force bool, choice device.Choice) error {
	dir := keep
	if dir == "" {
		tmp, err := os.MkdirTemp("", "rwkvkit-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	step := func(format string, a ...any) { fmt.Fprintf(out, "• "+format+"\n", a...) }

	pth, st, loraFile := path(fixtures.TinyRWKV7Name), path("tiny-rwkv7.st"), path("demo-lora.st")
	// Every file is checked before the first is written: a demo refused
	// for one file it would replace writes none.
	outputs := []string{pth, st, loraFile}
	for _, a := range demoArtifacts {
		outputs = append(outputs, path(a.file))
	}
	for _, o := range outputs {
		if err := atomicfile.Check(o, force); err != nil {
			return err
		}
	}
	if err := writeFixture(ctx, pth, fixtures.TinyRWKV7, force); err != nil {
		return err
	}
	src, err := openModel(pth)
	if err != nil {
		return err
	}
	info, err := format.Detect(src)
	src.Close()
	if err != nil {
		return err
	}
	step("model: %s — RWKV v%s, %d layers, embedding %d, %d×%d heads, vocabulary %d, %s parameters",
		fixtures.TinyRWKV7Name, info.Version, info.Layers, info.Embed, info.Heads, info.HeadSize, info.Vocab, humanCount(info.Params))

	if _, err := convert.File(ctx, pth, st, &convert.Options{Force: force}); err != nil {
		return err
	}
	step("converted to web-rwkv's float16 layout: %s", filepath.Base(st))

	if err := writeFixture(ctx, loraFile, fixtures.TinyRWKV7LoRA, force); err != nil {
		return err
	}
	step("made a rank-4 LoRA for every layer's att.key and att.value: %s", filepath.Base(loraFile))

	dev, _, err := openDevice(choice, io.Discard)
	if err != nil {
		return err
	}
	where := "CPU"
	if dev != nil {
		defer dev.Close()
		where = "GPU " + dev.Info().String()
	}
	loras := []artifact.LoRA{{Path: loraFile, Alpha: 1}}
	for _, a := range demoArtifacts {
		spec := &artifact.Spec{Base: st, LoRAs: loras, Quantize: a.rules, Device: dev, ToolVersion: version, Force: force}
		if _, err := artifact.Build(ctx, path(a.file), spec); err != nil {
			return err
		}
	}
	step("merged the LoRA and saved float16, Int8 and NF4 artifacts (merge and quantization on the %s)", where)

	if err := judgeDemo(ctx, out, dir, st, loras); err != nil {
		return err
	}
	if keep != "" {
		names := make([]string, len(outputs))
		for i, o := range outputs {
			names[i] = filepath.Base(o)
		}
		step("kept in %s: %s", dir, strings.Join(names, ", "))
	} else {
		step("all files were written to a temporary folder, now removed (use --keep DIR to keep them)")
	}
	return nil
}

// writeFixture writes an embedded file into the demo's folder, replacing a
// regular file of that name only with force, as every demo output does.
func writeFixture(ctx context.Context, path string, data []byte, force bool) error {
	return atomicfile.WriteFile(ctx, path, atomicfile.Options{Force: force}, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
