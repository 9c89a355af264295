package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/inspect"
	"github.com/rwkvkit/rwkvkit/quantize"
)

func newInspect() *cobra.Command {
	var asJSON, tensors, check bool
	cmd := &cobra.Command{
		Use: "inspect FILE",
		Example: `  rwkvkit inspect tiny-nf4.rkv --tensors=false
  rwkvkit inspect merged.rkv --verify --tensors=false
  rwkvkit inspect fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.demo-lora.st --json`,
		Short: "Show what a file holds: a model (RWKV version, dimensions), a LoRA, a state; sizes, dtypes, tensors",
		Long: `Inspect says what FILE holds — a model (its RWKV version and dimensions), a LoRA adapter (its
ranks and the tensors it changes) or a state — with its size, a summary of its dtypes, its parameter
count, its metadata and, for an .rkv artifact, how it was made; then every tensor, unless
--tensors=false. --verify reads every payload of an .rkv artifact and checks its checksum.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := &inspect.Options{Tensors: tensors, Verify: check}
			if check {
				bar := newProgress(0, "verify")
				defer bar.Finish()
				opts.Progress = barProgress(bar)
			}
			r, err := inspect.File(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			printInspect(cmd.OutOrStdout(), r, tensors)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&tensors, "tensors", true, "list every tensor (--tensors=false: the summary only)")
	cmd.Flags().BoolVar(&check, "verify", false, "read every payload of an .rkv artifact and check its checksum")
	return cmd
}

func printInspect(w io.Writer, r *inspect.Report, tensors bool) {
	fmt.Fprintf(w, "file:       %s (%s)\nkind:       %s\n", r.File, humanBytes(r.SizeBytes), r.Kind)
	switch {
	case r.Model != nil:
		printModel(w, r.Model, r.Layout)
	case r.LoRA != nil:
		a := r.LoRA
		ranks := make([]string, len(a.Ranks))
		for i, k := range a.Ranks {
			ranks[i] = fmt.Sprint(k)
		}
		fmt.Fprintf(w, "contents:   LoRA adapter (%s names): %d low-rank pairs of rank %s, %d full tensors\n", a.Naming, a.Pairs, strings.Join(ranks, ", "), a.Full)
		var targets []string
		for _, t := range a.Targets {
			if len(t.Layers) > 0 {
				targets = append(targets, fmt.Sprintf("%s (layers %s)", t.Tensor, quantize.FormatLayers(t.Layers)))
			} else {
				targets = append(targets, t.Tensor)
			}
		}
		fmt.Fprintf(w, "changes:    %s\n", strings.Join(targets, ", "))
	case r.State != nil:
		fmt.Fprintf(w, "contents:   state of %d layers\n", r.State.Layers)
	default:
		fmt.Fprintf(w, "model:      %s\n", r.NotModel)
	}
	fmt.Fprintf(w, "parameters: %d (%s)\n", r.Parameters, humanCount(r.Parameters))
	for _, d := range r.Stored {
		fmt.Fprintf(w, "stored:     %-7s %d tensors, %s parameters, %s\n", d.DType, d.Tensors, humanCount(d.Parameters), humanBytes(d.SizeBytes))
	}
	read := "dtype:     "
	if r.Stored != nil {
		read = "read as:   " // dequantized, and fused tensors split
	}
	for _, d := range r.DTypes {
		fmt.Fprintf(w, "%s %-7s %d tensors, %s parameters, %s\n", read, d.DType, d.Tensors, humanCount(d.Parameters), humanBytes(d.SizeBytes))
	}
	for _, k := range sortedKeys(r.Metadata) {
		fmt.Fprintf(w, "metadata:   %s = %s\n", k, r.Metadata[k])
	}
	if p := r.Provenance; p != nil {
		printProvenance(w, p)
	}
	if r.Verified != nil {
		fmt.Fprintln(w, "checksums:  every payload read and verified")
	}
	if !tensors {
		return
	}
	fmt.Fprintf(w, "tensors:    %d\n", len(r.Tensors))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "  %s\t%s\t%v\n", t.Name, t.DType, t.Shape)
	}
	tw.Flush()
}

func printModel(w io.Writer, m *format.ModelInfo, layout string) {
	fmt.Fprintf(w, "RWKV:       v%s (%s layout)\n", m.Version, layout)
	fmt.Fprintf(w, "layers:     %d\nembedding:  %d\n", m.Layers, m.Embed)
	if m.Heads > 0 {
		fmt.Fprintf(w, "heads:      %d × %d\n", m.Heads, m.HeadSize)
	}
	fmt.Fprintf(w, "vocabulary: %d\nFFN:        %d\n", m.Vocab, m.FFN)
	var lora []string
	for _, l := range []struct {
		name string
		d    int
	}{{"mix", m.MixLoRA}, {"decay", m.DecayLoRA}, {"a", m.ALoRA}, {"v", m.VLoRA}, {"gate", m.GLoRA}} {
		if l.d > 0 {
			lora = append(lora, fmt.Sprintf("%s %d", l.name, l.d))
		}
	}
	if len(lora) > 0 {
		fmt.Fprintf(w, "LoRA dims:  %s\n", strings.Join(lora, ", "))
	}
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
