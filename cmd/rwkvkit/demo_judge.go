package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/rwkvkit/rwkvkit/artifact"
	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/generate"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/tokenizer"
	"github.com/rwkvkit/rwkvkit/verify"
)

// demoRow is one model of the demo, judged against the merged float model.
type demoRow struct {
	label, file string
	metrics     verify.Metrics
	text        string
}

// judgeDemo loads the base model and each artifact of dir back, compares
// them on the sample text with the LoRA merged into the base in memory, and
// prints the table and a little generated text from each artifact.
func judgeDemo(ctx context.Context, out io.Writer, dir, base string, loras []artifact.LoRA) error {
	src, err := model.Open(base)
	if err != nil {
		return err
	}
	merged, _, err := artifact.Merge(ctx, src, base, loras, nil, nil)
	if err != nil {
		src.Close()
		return err
	}
	ref, err := model.LoadSource(ctx, merged, device.CPU)
	merged.Close()
	if err != nil {
		return err
	}
	ids := tokenizer.Bytes{}.Encode(verify.SampleText)
	refRows, err := verify.Logits(ctx, ref, ids, nil)
	ref.Close()
	if err != nil {
		return err
	}
	rows := []demoRow{{label: "base .st (no LoRA)", file: filepath.Base(base)}}
	for _, a := range demoArtifacts {
		rows = append(rows, demoRow{label: "merged " + a.label, file: a.file})
	}
	for i := range rows {
		path := base
		if i > 0 {
			path = filepath.Join(dir, rows[i].file)
		}
		if err := rows[i].judge(ctx, path, ids, refRows, i > 0); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "• loaded each artifact back and ran it on %d bytes of English text against the merged float16 model:\n", len(ids))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tfile\tperplexity\tmean KL\tmax KL\ttop-1 agreement\tmax |Δlogit|\t")
	for _, r := range rows {
		m := r.metrics
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3g\t%.3g\t%.1f%%\t%.3g\t\n", r.label, r.file, m.Perplexity, m.MeanKL, m.MaxKL, m.Top1Percent, m.MaxAbsDiff)
	}
	tw.Flush()
	fmt.Fprintln(out, "• generated (seed 42, temperature 0.7) — a tiny byte-level model, so expect English-shaped noise:")
	for _, r := range rows[1:] {
		fmt.Fprintf(out, "  %-15s %q\n", r.label+":", r.text)
	}
	return nil
}

// judge loads the model at path, compares it with the reference rows and,
// if asked, generates a little text from it.
func (r *demoRow) judge(ctx context.Context, path string, ids []int, refRows [][]float32, gen bool) error {
	e, err := loadModel(ctx, path, device.CPU, nil, io.Discard)
	if err != nil {
		return err
	}
	defer e.Close()
	rows, err := verify.Logits(ctx, e, ids, nil)
	if err != nil {
		return err
	}
	if r.metrics, err = verify.Compare(rows, refRows, ids, false); err != nil || !gen {
		return err
	}
	r.text, err = demoText(ctx, e)
	return err
}

// demoText continues "The " for 48 bytes.
func demoText(ctx context.Context, e engine.Engine) (string, error) {
	g, err := generate.New(e, tokenizer.Bytes{}, generate.Sampler{Temperature: 0.7, TopP: 0.85, Seed: 42})
	if err != nil {
		return "", err
	}
	if err := g.Feed(ctx, tokenizer.Bytes{}.Encode("The ")); err != nil {
		return "", err
	}
	var text strings.Builder
	if _, err := g.Generate(ctx, 48, &text); err != nil {
		return "", err
	}
	return "The " + printable(text.String()), nil
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
