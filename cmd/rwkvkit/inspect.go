package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/serialize"
)

func newInspect() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show what a model file is: kind, RWKV version, dimensions and every tensor",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := openModel(args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			rep := inspectSource(args[0], src)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.print(cmd.OutOrStdout())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type inspectTensor struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	Bytes int64   `json:"bytes"`
}

type inspectReport struct {
	File       string                `json:"file"`
	Kind       string                `json:"kind"`
	Model      *format.ModelInfo     `json:"model,omitempty"`
	Layout     string                `json:"layout,omitempty"`
	NotModel   string                `json:"not_model,omitempty"`
	Metadata   map[string]string     `json:"metadata,omitempty"`
	Provenance *serialize.Provenance `json:"provenance,omitempty"`
	Tensors    []inspectTensor       `json:"tensors"`
}

func inspectSource(path string, src *format.Source) inspectReport {
	rep := inspectReport{File: path, Kind: src.Format, Metadata: src.Metadata}
	if info, err := format.Detect(src); err == nil {
		rep.Model = &info
		rep.Layout = info.Layout.String()
	} else {
		rep.NotModel = err.Error()
	}
	if src.Format == "rkv" {
		if h, err := serialize.ReadHeaderFile(path); err == nil {
			rep.Provenance = &h.Provenance
		}
	}
	for _, t := range src.Tensors {
		rep.Tensors = append(rep.Tensors, inspectTensor{t.Name, t.DType.String(), t.Shape, t.Size()})
	}
	return rep
}

func (r inspectReport) print(w io.Writer) {
	fmt.Fprintf(w, "file:       %s\nkind:       %s\n", r.File, r.Kind)
	if m := r.Model; m != nil {
		fmt.Fprintf(w, "RWKV:       v%s (%s layout)\n", m.Version, r.Layout)
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
		fmt.Fprintf(w, "parameters: %d (%s)\n", m.Params, humanCount(m.Params))
	} else {
		fmt.Fprintf(w, "model:      %s\n", r.NotModel)
	}
	for _, k := range sortedKeys(r.Metadata) {
		fmt.Fprintf(w, "metadata:   %s = %s\n", k, r.Metadata[k])
	}
	if p := r.Provenance; p != nil {
		fmt.Fprintf(w, "made by:    %s %s\n", p.Tool, p.ToolVersion)
		for _, s := range p.Sources {
			fmt.Fprintf(w, "source:     %s (%d bytes, sha256 %s)\n", s.Name, s.Size, s.SHA256)
		}
		for _, l := range p.LoRAs {
			fmt.Fprintf(w, "LoRA:       %s at alpha %g (%d bytes, sha256 %s)\n", l.Name, l.Alpha, l.Size, l.SHA256)
		}
		for _, lp := range p.LoRAPatterns {
			fmt.Fprintf(w, "LoRA alpha: %g for tensors matching %q\n", lp.Alpha, lp.Regexp)
		}
		if q := p.Quantization; q.Plan != "" {
			fmt.Fprintf(w, "quantized:  %s, on %s\n", q.Plan, q.Device)
		} else if q.Int8 != "" || q.NF4 != "" || q.SF4 != "" { // written before plans were recorded
			sf4 := ""
			if q.SF4 != "" {
				sf4 = fmt.Sprintf(", SF4 layers %q", q.SF4)
			}
			fmt.Fprintf(w, "quantized:  Int8 layers %q, NF4 layers %q%s, on %s\n", q.Int8, q.NF4, sf4, q.Device)
		}
	}
	fmt.Fprintf(w, "tensors:    %d\n", len(r.Tensors))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "  %s\t%s\t%v\n", t.Name, t.DType, t.Shape)
	}
	tw.Flush()
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
