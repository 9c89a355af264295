package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/artifact"
	"github.com/rwkvkit/rwkvkit/convert"
	"github.com/rwkvkit/rwkvkit/fixtures"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/generate"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/runner"
	"github.com/rwkvkit/rwkvkit/tokenizer"
	"github.com/rwkvkit/rwkvkit/verify"
)

func newDemo() *cobra.Command {
	var keep, device string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline on the embedded tiny RWKV-7 model",
		Long: `Demo converts the embedded tiny RWKV-7 checkpoint to web-rwkv's .st, makes a small LoRA and
merges it, quantizes the merged model to Int8 and NF4 (on a GPU when one answers), saves each as a
.rkv artifact, loads them back, and prints how close each one stays to the float model and a few
bytes of text from each. Its files go to a temporary folder that is removed at the end, or to
--keep DIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return demo(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), keep, device)
		},
	}
	cmd.Flags().StringVar(&keep, "keep", "", "write the files into DIR (created if needed) and keep them")
	cmd.Flags().StringVar(&device, "device", "auto", "where to merge and quantize: auto, cpu or gpu")
	return cmd
}

// demoRow is one artifact of the demo, judged against the merged float model.
type demoRow struct {
	label, file string
	metrics     verify.Metrics
	text        string
	load        time.Duration
}

func demo(ctx context.Context, out, log io.Writer, keep, device string) error {
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

	pth := path(fixtures.TinyRWKV7Name)
	if err := os.WriteFile(pth, fixtures.TinyRWKV7, 0o644); err != nil {
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

	st := path("tiny-rwkv7.st")
	if _, err := convert.File(ctx, pth, st, &convert.Options{Force: true}); err != nil {
		return err
	}
	step("converted to web-rwkv's float16 layout: %s", filepath.Base(st))

	loraFile := path("demo-lora.st")
	if err := os.WriteFile(loraFile, fixtures.TinyRWKV7LoRA, 0o644); err != nil {
		return err
	}
	step("made a rank-4 LoRA for every layer's att.key and att.value: %s", filepath.Base(loraFile))

	dev, err := openDevice(device, io.Discard)
	if err != nil {
		return err
	}
	where := "CPU"
	if dev != nil {
		defer dev.Close()
		where = "GPU " + dev.Info().String()
	}
	jobs := []struct {
		label, file string
		rules       []quantize.Rule
	}{
		{"float16", "merged-f16.rkv", nil},
		{"Int8", "merged-int8.rkv", []quantize.Rule{{Kind: format.Int8Block, Layers: "all"}}},
		{"NF4", "merged-nf4.rkv", []quantize.Rule{{Kind: format.NF4Block, Layers: "all"}}},
	}
	for _, j := range jobs {
		spec := &artifact.Spec{Base: st, LoRAs: []artifact.LoRA{{Path: loraFile, Alpha: 1}}, Quantize: j.rules,
			Device: dev, ToolVersion: version, Force: true}
		if err := artifact.Build(ctx, path(j.file), spec); err != nil {
			return err
		}
	}
	step("merged the LoRA and saved float16, Int8 and NF4 artifacts (merge and quantization on the %s)", where)

	// The reference: the LoRA merged into the float16 model in memory.
	ref, err := mergedInMemory(st, loraFile)
	if err != nil {
		return err
	}
	ids := tokenizer.Bytes{}.Encode(sampleText)
	refRows, err := allLogits(ref, ids)
	if err != nil {
		return err
	}
	base, err := loadModel(st)
	if err != nil {
		return err
	}
	baseRows, err := allLogits(base, ids)
	if err != nil {
		return err
	}
	baseMetrics, err := verify.Compare(baseRows, refRows, ids, false)
	if err != nil {
		return err
	}
	rows := []demoRow{{label: "base .st (no LoRA)", file: filepath.Base(st), metrics: baseMetrics}}
	for _, j := range jobs {
		start := time.Now()
		m, err := loadModel(path(j.file))
		if err != nil {
			return err
		}
		r := demoRow{label: "merged " + j.label, file: j.file, load: time.Since(start)}
		mr, err := allLogits(m, ids)
		if err != nil {
			return err
		}
		if r.metrics, err = verify.Compare(mr, refRows, ids, false); err != nil {
			return err
		}
		gen, err := generateText(m, tokenizer.Bytes{}, tokenizer.Bytes{}.Encode("The "), 48, &generate.Sampler{Temperature: 0.7, TopP: 0.85, Seed: 42}, io.Discard)
		if err != nil {
			return err
		}
		text, _ := tokenizer.Bytes{}.Decode(gen)
		r.text = "The " + printable(string(text))
		rows = append(rows, r)
	}
	step("loaded each artifact back and ran it on %d bytes of English text against the merged float16 model:", len(ids))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tfile\tperplexity\tmean KL\tmax KL\ttop-1 agreement\tmax |Δlogit|\t")
	for _, r := range rows {
		m := r.metrics
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3g\t%.3g\t%.1f%%\t%.3g\t\n", r.label, r.file, m.Perplexity, m.MeanKL, m.MaxKL, 100*m.Top1, m.MaxAbsDiff)
	}
	tw.Flush()
	step("generated (seed 42, temperature 0.7) — a tiny byte-level model, so expect English-shaped noise:")
	for _, r := range rows[1:] {
		fmt.Fprintf(out, "  %-15s %q\n", r.label+":", r.text)
	}
	if keep != "" {
		step("kept in %s: %s, %s, %s, %s, %s, %s", dir, filepath.Base(pth), filepath.Base(st), filepath.Base(loraFile), jobs[0].file, jobs[1].file, jobs[2].file)
	} else {
		step("all files were written to a temporary folder, now removed (use --keep DIR to keep them)")
	}
	return nil
}

func mergedInMemory(base, loraPath string) (*runner.Model, error) {
	src, err := openModel(base)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	merged, _, err := artifact.Merge(context.Background(), src, base, []artifact.LoRA{{Path: loraPath, Alpha: 1}}, nil, nil)
	if err != nil {
		return nil, err
	}
	defer merged.Close()
	return runner.Load(context.Background(), merged)
}

// printable keeps a byte model's output readable on a terminal.
func printable(s string) string {
	s = strings.ToValidUTF8(s, "·")
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\n' {
			return '·'
		}
		return r
	}, s)
}
