package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/verify"
)

func newVerify() *cobra.Command {
	var (
		in                  inputFlags
		ref, expect         string
		asJSON, perPosition bool
		maxKL, minTop1      float64
		maxDLogit           float64
	)
	cmd := &cobra.Command{
		Use: "verify MODEL [--ref MODEL2 | --expect LOGITS] [--text TEXT | --text-file FILE | --tokens IDS]",
		Example: `  rwkvkit verify tiny-nf4.rkv --ref tiny.st --max-kl 0.01 --min-top1 95
  rwkvkit verify tiny.st --tokens 34,105,110 --expect fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.quote_in.logits.f32 --max-dlogit 0.01
  rwkvkit verify tiny-nf4.rkv --ref tiny.st --text-file fixtures/rwkv-tiny/README.md --json`,
		Short: "Check a model against a reference model or expected logits: perplexity, KL, top-1 agreement",
		Long: `Verify runs the same tokens through MODEL and through a reference (another model file, or
expected logits as float32 little-endian [tokens, vocabulary]) and reports the perplexity of
each on the text, the KL divergence (reference ‖ model) mean and max, the top-1 agreement and
the largest and RMS logit differences. With thresholds given, it exits with status 1 when one
is missed. Without --text or --tokens it reads a short built-in English text.

The two are compared a chunk of positions at a time, so memory follows a chunk, not the text:
with --ref, the model's logits wait in a temporary file (in $TMPDIR; 4 bytes per logit, 1 GiB
for 4,096 tokens of a 65,536-token vocabulary) while the reference runs, and the two models
are never loaded at once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ref != "" && expect != "" {
				return fmt.Errorf("give either --ref or --expect, not both")
			}
			var th verify.Thresholds
			flags := cmd.Flags()
			for name, p := range map[string]**float64{"max-kl": &th.MaxMeanKL, "min-top1": &th.MinTop1Percent, "max-dlogit": &th.MaxAbsDLogit} {
				if flags.Changed(name) {
					v, _ := flags.GetFloat64(name)
					*p = &v
				}
			}
			if err := th.Validate(); err != nil {
				var te *verify.ThresholdError
				if errors.As(err, &te) {
					flag := map[string]string{"mean KL": "max-kl", "top-1 agreement": "min-top1", "|Δlogit|": "max-dlogit"}[te.Metric]
					return fmt.Errorf("--%s %g: want %s", flag, te.Value, te.Want)
				}
				return err
			}
			if th.Any() && ref == "" && expect == "" {
				return fmt.Errorf("thresholds need a reference: give --ref or --expect")
			}
			if err := in.resolve(cmd); err != nil {
				return err
			}
			m, err := loadFor(cmd, args[0], &in, nil, "", 0)
			if err != nil {
				return err
			}
			defer m.close()
			vocab := m.e.Info().Vocab
			var metrics verify.Metrics
			if ref != "" {
				metrics, err = verify.CompareRuns(m.ids, vocab, m.run, func(tokens []int, each func(int, [][]float32) error) error {
					r, err := loadFor(cmd, ref, &in, tokens, args[0], vocab)
					if err != nil {
						return err
					}
					return r.run(tokens, each)
				}, perPosition)
			} else {
				metrics, err = verify.CompareFile(m.ids, vocab, m.run, expect, perPosition)
			}
			if err != nil {
				return err
			}
			rep := verify.ReportOf(args[0], ref+expect, metrics, th) // one of them at most
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else {
				printVerify(out, rep)
			}
			if !rep.Passed {
				return &thresholdError{fmt.Sprintf("verify %s: %d threshold(s) missed", args[0], len(rep.Failed))}
			}
			return nil
		},
	}
	in.register(cmd)
	f := cmd.Flags()
	f.StringVar(&ref, "ref", "", "reference model file")
	f.StringVar(&expect, "expect", "", "expected logits file (float32 little-endian, [tokens, vocabulary])")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&perPosition, "per-position", false, "also report every position")
	f.Float64Var(&maxKL, "max-kl", 0, "fail when the mean KL divergence exceeds this")
	f.Float64Var(&minTop1, "min-top1", 0, "fail when top-1 agreement (percent) is below this")
	f.Float64Var(&maxDLogit, "max-dlogit", 0, "fail when the largest |Δlogit| exceeds this")
	return cmd
}

func printVerify(w io.Writer, r *verify.Report) {
	mt := r.Metrics
	fmt.Fprintf(w, "model:            %s\n", r.Model)
	if r.Reference != "" {
		fmt.Fprintf(w, "reference:        %s\n", r.Reference)
	}
	fmt.Fprintf(w, "tokens:           %d\n", r.Tokens)
	fmt.Fprintf(w, "perplexity:       %.4f\n", mt.Perplexity)
	if r.Reference != "" {
		fmt.Fprintf(w, "ref perplexity:   %.4f\n", mt.RefPerplexity)
		fmt.Fprintf(w, "KL mean / max:    %.6g / %.6g\n", mt.MeanKL, mt.MaxKL)
		fmt.Fprintf(w, "top-1 agreement:  %.2f%%\n", mt.Top1Percent)
		fmt.Fprintf(w, "|Δlogit| max/RMS: %.6g / %.6g\n", mt.MaxAbsDiff, mt.RMSDiff)
	}
	for i, p := range mt.PerPosition {
		fmt.Fprintf(w, "  %4d  KL %.6g  top-1 %d/%d  max |Δlogit| %.6g\n", i, p.KL, p.Top1Model, p.Top1Ref, p.MaxAbsDiff)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "FAILED: %s\n", f)
	}
}
