package main

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/artifact"
	"github.com/rwkvkit/rwkvkit/lora"
)

// parseBlend reads FILE[:ALPHA]; a suffix that is not a number belongs to
// the file name (so Windows-style paths and odd names still work), unless
// no such file exists while FILE does: then the alpha is wrong.
func parseBlend(s string) (artifact.LoRA, error) {
	if s == "" {
		return artifact.LoRA{}, fmt.Errorf("--lora: empty file name")
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		a, err := strconv.ParseFloat(s[i+1:], 32)
		if err == nil && !math.IsInf(a, 0) && !math.IsNaN(a) {
			return artifact.LoRA{Path: s[:i], Alpha: float32(a)}, nil
		}
		if _, whole := os.Stat(s); whole != nil {
			if _, file := os.Stat(s[:i]); file == nil {
				return artifact.LoRA{}, fmt.Errorf("--lora %q: alpha %q is not a finite number", s, s[i+1:])
			}
		}
	}
	if _, err := os.Stat(s); err != nil {
		return artifact.LoRA{}, fmt.Errorf("--lora: %w", err)
	}
	return artifact.LoRA{Path: s, Alpha: 1}, nil
}

func parsePattern(s string) (lora.Pattern, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return lora.Pattern{}, fmt.Errorf("--lora-pattern %q: want REGEX:ALPHA", s)
	}
	a, err := strconv.ParseFloat(s[i+1:], 32)
	if err != nil {
		return lora.Pattern{}, fmt.Errorf("--lora-pattern %q: alpha %q is not a number", s, s[i+1:])
	}
	re, err := regexp.Compile(s[:i])
	if err != nil {
		return lora.Pattern{}, fmt.Errorf("--lora-pattern %q: %w", s, err)
	}
	return lora.Pattern{Regexp: re, Alpha: float32(a)}, nil
}

func newMerge() *cobra.Command {
	var (
		loras, patterns []string
		qf              quantFlags
		force           bool
	)
	cmd := &cobra.Command{
		Use: "merge BASE OUT.rkv --lora FILE[:ALPHA] ...",
		Example: `  rwkvkit merge tiny.st merged.rkv --lora fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.demo-lora.st:0.5
  rwkvkit merge tiny.st merged-nf4.rkv --lora fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.demo-lora.st --lora-pattern 'att\.key:1.5' --nf4 all`,
		Short: "Merge LoRA adapters into a model, optionally quantize it, and save a .rkv artifact",
		Long: `Merge applies one or more LoRA files (.pth or .st; lora_A/lora_B or lora.0/lora.1 names;
full-tensor deltas too) to BASE in the order given, each at its ALPHA (default 1):
W ← W + (alpha/rank)·B·Aᵀ, computed in float32 and rounded once to the base's dtype.
--lora-pattern REGEX:ALPHA sets the alpha of the tensors whose web-rwkv name matches REGEX
(the last matching pattern wins), for every adapter. Then --int8/--nf4 quantize as in
'rwkvkit quantize'. The artifact records the base and every adapter with its SHA-256 and alpha.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := &artifact.Spec{Base: args[0], Quantize: qf.rules, Force: force, NoSync: qf.noSync}
			if len(loras) == 0 {
				return fmt.Errorf("nothing to merge: give --lora FILE[:ALPHA]")
			}
			for _, s := range loras {
				b, err := parseBlend(s)
				if err != nil {
					return err
				}
				spec.LoRAs = append(spec.LoRAs, b)
			}
			for _, s := range patterns {
				p, err := parsePattern(s)
				if err != nil {
					return err
				}
				spec.Patterns = append(spec.Patterns, p)
			}
			return buildArtifact(cmd, args[1], qf.device.c, spec)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&loras, "lora", nil, "LoRA file to merge, with an optional :ALPHA (repeatable, applied in order)")
	f.StringArrayVar(&patterns, "lora-pattern", nil, "REGEX:ALPHA: the alpha for tensors whose name matches (repeatable; the last match wins)")
	qf.register(cmd)
	f.BoolVarP(&force, "force", "f", false, "replace OUT if it exists")
	return cmd
}
