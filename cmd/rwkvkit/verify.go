package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/logits"
	"github.com/rwkvkit/rwkvkit/runner"
	"github.com/rwkvkit/rwkvkit/verify"
)

// sampleText is what verify reads when given no text: a few hundred bytes of
// plain English prose, enough for stable KL and agreement figures.
const sampleText = `The little river ran through the valley, past the mill and the old stone bridge, ` +
	`and on towards the sea. In spring the water rose with the melting snow, and the children ` +
	`of the village would stand on the bridge to watch the branches float by. "It is going home," ` +
	`said the miller's daughter, "like everything that runs downhill." Nobody argued with her.`

type verifyResult struct {
	Model   string         `json:"model"`
	Ref     string         `json:"reference,omitempty"`
	Tokens  int            `json:"tokens"`
	Metrics verify.Metrics `json:"metrics"`
	Failed  []string       `json:"failed,omitempty"`
}

func newVerify() *cobra.Command {
	var (
		in                  inputFlags
		ref, expect         string
		asJSON, perPosition bool
		maxKL, minTop1      float64
		maxDLogit           float64
	)
	cmd := &cobra.Command{
		Use:   "verify MODEL [--ref MODEL2 | --expect LOGITS] [--text FILE | --tokens IDS]",
		Short: "Check a model against a reference model or expected logits: perplexity, KL, top-1 agreement",
		Long: `Verify runs the same tokens through MODEL and through a reference (another model file, or
expected logits as float32 little-endian [tokens, vocabulary]) and reports the perplexity of
each on the text, the KL divergence (reference ‖ model) mean and max, the top-1 agreement and
the largest and RMS logit differences. With thresholds given, it exits with status 1 when one
is missed. Without --text or --tokens it reads a short built-in English text.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ref != "" && expect != "" {
				return fmt.Errorf("give either --ref or --expect, not both")
			}
			m, err := loadModel(args[0])
			if err != nil {
				return err
			}
			ids, err := in.ids(m, sampleText)
			if err != nil {
				return err
			}
			res := verifyResult{Model: args[0], Tokens: len(ids)}
			modelRows, err := allLogits(m, ids)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			var refRows [][]float32
			switch {
			case ref != "":
				res.Ref = ref
				rm, err := loadModel(ref)
				if err != nil {
					return err
				}
				if rm.Info().Vocab != m.Info().Vocab {
					return fmt.Errorf("%s has a vocabulary of %d, %s of %d", ref, rm.Info().Vocab, args[0], m.Info().Vocab)
				}
				if refRows, err = allLogits(rm, ids); err != nil {
					return fmt.Errorf("%s: %w", ref, err)
				}
			case expect != "":
				res.Ref = expect
				if refRows, err = logits.ReadFile(expect, len(ids), m.Info().Vocab); err != nil {
					return err
				}
			}
			res.Metrics, err = verify.Compare(modelRows, refRows, ids, perPosition)
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			if refRows != nil {
				if flags.Changed("max-kl") && !(res.Metrics.MeanKL <= maxKL) {
					res.Failed = append(res.Failed, fmt.Sprintf("mean KL %.6g > %g", res.Metrics.MeanKL, maxKL))
				}
				if flags.Changed("min-top1") && !(100*res.Metrics.Top1 >= minTop1) {
					res.Failed = append(res.Failed, fmt.Sprintf("top-1 agreement %.2f%% < %g%%", 100*res.Metrics.Top1, minTop1))
				}
				if flags.Changed("max-dlogit") && !(res.Metrics.MaxAbsDiff <= maxDLogit) {
					res.Failed = append(res.Failed, fmt.Sprintf("max |Δlogit| %.6g > %g", res.Metrics.MaxAbsDiff, maxDLogit))
				}
			} else if flags.Changed("max-kl") || flags.Changed("min-top1") || flags.Changed("max-dlogit") {
				return fmt.Errorf("thresholds need a reference: give --ref or --expect")
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				printVerify(out, res)
			}
			if len(res.Failed) > 0 {
				return &thresholdError{fmt.Sprintf("verify %s: %d threshold(s) missed", args[0], len(res.Failed))}
			}
			return nil
		},
	}
	in.register(cmd, true)
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

func allLogits(m *runner.Model, ids []int) ([][]float32, error) {
	state, err := m.NewState()
	if err != nil {
		return nil, err
	}
	flat, err := m.Forward(state, ids, true)
	if err != nil {
		return nil, err
	}
	return logits.Rows(flat, m.Info().Vocab), nil
}

func printVerify(w io.Writer, r verifyResult) {
	mt := r.Metrics
	fmt.Fprintf(w, "model:            %s\n", r.Model)
	if r.Ref != "" {
		fmt.Fprintf(w, "reference:        %s\n", r.Ref)
	}
	fmt.Fprintf(w, "tokens:           %d\n", r.Tokens)
	fmt.Fprintf(w, "perplexity:       %.4f\n", mt.Perplexity)
	if r.Ref != "" {
		fmt.Fprintf(w, "ref perplexity:   %.4f\n", mt.RefPerplexity)
		fmt.Fprintf(w, "KL mean / max:    %.6g / %.6g\n", mt.MeanKL, mt.MaxKL)
		fmt.Fprintf(w, "top-1 agreement:  %.2f%%\n", 100*mt.Top1)
		fmt.Fprintf(w, "|Δlogit| max/RMS: %.6g / %.6g\n", mt.MaxAbsDiff, mt.RMSDiff)
	}
	for i, p := range mt.PerPosition {
		fmt.Fprintf(w, "  %4d  KL %.6g  top-1 %d/%d  max |Δlogit| %.6g\n", i, p.KL, p.Top1Model, p.Top1Ref, p.MaxAbsDiff)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "FAILED: %s\n", f)
	}
}

func readTextFile(path string) ([]byte, error) {
	const maxInput = 1 << 30
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxInput {
		return nil, fmt.Errorf("%s: %d bytes is more than the %d this command reads", path, fi.Size(), maxInput)
	}
	return os.ReadFile(path)
}
