package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rwkvkit/rwkvkit/artifact"
	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
)

// quantFlags collects --int8 and --nf4 in the order they were given, since
// where both cover a layer the later one wins.
type quantFlags struct {
	rules  []quantize.Rule
	device deviceFlag
	noSync bool
}

type ruleValue struct {
	kind  format.DType
	rules *[]quantize.Rule
}

func (v ruleValue) String() string { return "" }
func (v ruleValue) Type() string   { return "SPEC" }
func (v ruleValue) Set(s string) error {
	// The syntax now, before any model is loaded; the layers against the
	// model once it is.
	if err := quantize.CheckLayerSpec(s); err != nil {
		return err
	}
	*v.rules = append(*v.rules, quantize.Rule{Kind: v.kind, Layers: s})
	return nil
}

var _ pflag.Value = ruleValue{}

// registerRules adds --int8, --nf4 and --sf4, collected in rules.
func registerRules(f *pflag.FlagSet, rules *[]quantize.Rule) {
	f.Var(ruleValue{format.Int8Block, rules}, "int8", "quantize these layers to Int8: all, N (layers 0..N-1) or ranges like 0-5,9")
	f.Var(ruleValue{format.NF4Block, rules}, "nf4", "quantize these layers to NF4: all, N (layers 0..N-1) or ranges like 0-5,9")
	f.Var(ruleValue{format.SF4Block, rules}, "sf4", "quantize these layers to web-rwkv's SF4 (NF4 with Student-t values): all, N or ranges")
}

func (q *quantFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	registerRules(f, &q.rules)
	registerDevice(cmd, &q.device, "where to quantize: auto (a hardware GPU when one answers), cpu or gpu")
	registerNoSync(f, &q.noSync)
	f.Bool("json", false, "print what was written as JSON on stdout")
}

func newQuantize() *cobra.Command {
	var (
		qf    quantFlags
		force bool
	)
	cmd := &cobra.Command{
		Use: "quantize IN OUT.rkv [--int8 SPEC] [--nf4 SPEC] [--sf4 SPEC]",
		Example: `  rwkvkit quantize tiny.st tiny-nf4.rkv --nf4 all
  rwkvkit quantize tiny.st tiny-mixed.rkv --int8 all --nf4 6   # NF4 in layers 0-5, Int8 in 6-11
  rwkvkit quantize tiny.st tiny-int8.rkv --int8 all --device cpu`,
		Short: "Quantize a model to web-rwkv's Int8/NF4 layouts and save it as a .rkv artifact",
		Long: `Quantize reads any model file, quantizes the matrices web-rwkv quantizes (att key, value,
receptance, output, gate; ffn key, value, receptance) in the layers each SPEC selects, and writes a
.rkv artifact that every rwkvkit command loads. SPEC is all, N (layers 0..N-1, like web-rwkv's
--quant N) or ranges like 0-5,9; where several of --int8, --nf4 and --sf4 cover a layer, the later
flag wins.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(qf.rules) == 0 {
				return fmt.Errorf("nothing to do: give --int8, --nf4 and/or --sf4 SPEC")
			}
			return buildArtifact(cmd, args[1], qf.device.c, &artifact.Spec{Base: args[0], Quantize: qf.rules, Force: force, NoSync: qf.noSync})
		},
	}
	qf.register(cmd)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace OUT if it exists")
	return cmd
}

// buildArtifact checks what spec asks for, then opens the device --device
// names and builds the artifact at out, with a progress bar.
func buildArtifact(cmd *cobra.Command, out string, choice device.Choice, spec *artifact.Spec) error {
	ctx := cmd.Context()
	if err := artifact.Check(ctx, out, spec); err != nil {
		return err
	}
	d, which, err := openDevice(choice, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if d != nil {
		defer d.Close()
	}
	bar := newProgress(0, filepath.Base(out))
	spec.Device, spec.ToolVersion, spec.Progress = d, version, barProgress(bar)
	res, err := artifact.Build(ctx, out, spec)
	if err != nil {
		return err
	}
	bar.Finish()
	asJSON, _ := cmd.Flags().GetBool("json")
	wr := written{File: out, Format: "rkv", Tensors: res.Tensors, Parameters: res.Params, InputSizeBytes: res.InputBytes,
		OutputSizeBytes: res.OutputBytes, BitsPerWeight: res.BitsPerWeight(), Device: which}
	return wr.report(cmd.OutOrStdout(), cmd.ErrOrStderr(), asJSON, "")
}
