package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/lora"
	"github.com/rwkvkit/rwkvkit/serialize"
)

// blendSpec is one --lora FILE[:ALPHA].
type blendSpec struct {
	path  string
	alpha float32
}

// patternSpec is one --lora-pattern REGEX:ALPHA.
type patternSpec struct {
	re    *regexp.Regexp
	alpha float32
}

// parseBlend reads FILE[:ALPHA]; a suffix that is not a number belongs to
// the file name (so Windows-style paths and odd names still work).
func parseBlend(s string) (blendSpec, error) {
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if a, err := strconv.ParseFloat(s[i+1:], 32); err == nil {
			return blendSpec{s[:i], float32(a)}, nil
		}
	}
	if s == "" {
		return blendSpec{}, fmt.Errorf("--lora: empty file name")
	}
	return blendSpec{s, 1}, nil
}

func parsePattern(s string) (patternSpec, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return patternSpec{}, fmt.Errorf("--lora-pattern %q: want REGEX:ALPHA", s)
	}
	a, err := strconv.ParseFloat(s[i+1:], 32)
	if err != nil {
		return patternSpec{}, fmt.Errorf("--lora-pattern %q: alpha %q is not a number", s, s[i+1:])
	}
	re, err := regexp.Compile(s[:i])
	if err != nil {
		return patternSpec{}, fmt.Errorf("--lora-pattern %q: %w", s, err)
	}
	return patternSpec{re, float32(a)}, nil
}

func newMerge() *cobra.Command {
	var (
		loras, patterns []string
		qf              quantFlags
		force           bool
	)
	cmd := &cobra.Command{
		Use:   "merge BASE OUT.rkv --lora FILE[:ALPHA] ...",
		Short: "Merge LoRA adapters into a model, optionally quantize it, and save a .rkv artifact",
		Long: `Merge applies one or more LoRA files (.pth or .st; lora_A/lora_B or lora.0/lora.1 names;
full-tensor deltas too) to BASE in the order given, each at its ALPHA (default 1):
W ← W + (alpha/rank)·B·Aᵀ, computed in float32 and rounded once to the base's dtype.
--lora-pattern REGEX:ALPHA sets the alpha of the tensors whose web-rwkv name matches REGEX
(the last matching pattern wins), for every adapter. Then --int8/--nf4 quantize as in
'rwkvkit quantize'. The artifact records the base and every adapter with its SHA-256 and alpha.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := artifactJob{base: args[0], out: args[1], quant: &qf, force: force}
			if len(loras) == 0 {
				return fmt.Errorf("nothing to merge: give --lora FILE[:ALPHA]")
			}
			for _, s := range loras {
				b, err := parseBlend(s)
				if err != nil {
					return err
				}
				job.blends = append(job.blends, b)
			}
			for _, s := range patterns {
				p, err := parsePattern(s)
				if err != nil {
					return err
				}
				job.patterns = append(job.patterns, p)
			}
			return runArtifactJob(cmd, job)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&loras, "lora", nil, "LoRA file to merge, with an optional :ALPHA (repeatable, applied in order)")
	f.StringArrayVar(&patterns, "lora-pattern", nil, "REGEX:ALPHA: the alpha for tensors whose name matches (repeatable; the last match wins)")
	qf.register(cmd)
	f.BoolVarP(&force, "force", "f", false, "replace OUT if it exists")
	return cmd
}

// mergeLoRAs opens the adapters of job and merges them into model (on dev
// when there is one). The adapters' files stay open until the merged source
// is closed with the base.
func mergeLoRAs(model *format.Source, job artifactJob, dev *gpu.Device) (*format.Source, []serialize.LoRA, error) {
	var blends []lora.Blend
	var prov []serialize.LoRA
	var closers multiCloser
	for _, b := range job.blends {
		src, err := openModel(b.path)
		if err != nil {
			closers.Close()
			return nil, nil, err
		}
		closers = append(closers, src)
		ad, err := lora.Open(src)
		if err != nil {
			closers.Close()
			return nil, nil, fmt.Errorf("%s: %w", b.path, err)
		}
		bl := lora.Blend{Adapter: ad, Alpha: b.alpha}
		for _, p := range job.patterns {
			bl.Patterns = append(bl.Patterns, lora.Pattern{Regexp: p.re, Alpha: p.alpha})
		}
		blends = append(blends, bl)
		d, err := serialize.DigestFile(b.path)
		if err != nil {
			closers.Close()
			return nil, nil, err
		}
		prov = append(prov, serialize.LoRA{FileDigest: d, Alpha: float64(b.alpha)})
	}
	opts := &lora.Options{}
	if dev != nil {
		g, err := lora.NewGPU(dev)
		if err != nil {
			closers.Close()
			return nil, nil, err
		}
		opts.Backend = g
	}
	merged, err := lora.Merge(model, blends, opts)
	if err != nil {
		closers.Close()
		return nil, nil, fmt.Errorf("merge into %s: %w", job.base, err)
	}
	merged.Closer = append(closers, merged.Closer)
	return merged, prov, nil
}

// multiCloser closes several sources; nil entries are skipped.
type multiCloser []interface{ Close() error }

func (m multiCloser) Close() error {
	var first error
	for _, c := range m {
		if c == nil {
			continue
		}
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
