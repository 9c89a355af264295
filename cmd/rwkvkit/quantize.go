package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/serialize"
)

// quantFlags collects --int8 and --nf4 in the order they were given, since
// where both cover a layer the later one wins.
type quantFlags struct {
	rules  []quantize.Rule
	device string
}

type ruleValue struct {
	kind  format.DType
	rules *[]quantize.Rule
}

func (v ruleValue) String() string { return "" }
func (v ruleValue) Type() string   { return "SPEC" }
func (v ruleValue) Set(s string) error {
	*v.rules = append(*v.rules, quantize.Rule{Kind: v.kind, Layers: s})
	return nil
}

var _ pflag.Value = ruleValue{}

func (q *quantFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Var(ruleValue{format.Int8Block, &q.rules}, "int8", "quantize these layers to Int8: all, N (layers 0..N-1) or ranges like 0-5,9")
	f.Var(ruleValue{format.NF4Block, &q.rules}, "nf4", "quantize these layers to NF4: all, N (layers 0..N-1) or ranges like 0-5,9")
	f.StringVar(&q.device, "device", "auto", "where to quantize: auto (a GPU when one answers), cpu or gpu")
}

// specs returns the last --int8 and --nf4 given, for provenance.
func (q *quantFlags) specs() (int8Spec, nf4Spec string) {
	for _, r := range q.rules {
		if r.Kind == format.Int8Block {
			int8Spec = r.Layers
		} else {
			nf4Spec = r.Layers
		}
	}
	return
}

// apply quantizes src as the flags ask, on the device they name, returning
// the lazy quantized source and a description of the device (empty when
// nothing is quantized). dev is the already opened GPU, if any.
func (q *quantFlags) apply(ctx context.Context, src *format.Source, info format.ModelInfo, dev *gpu.Device) (*format.Source, string, error) {
	if len(q.rules) == 0 {
		return src, "", nil
	}
	plan, err := quantize.NewPlan(info.Layers, q.rules...)
	if err != nil {
		return nil, "", err
	}
	var qz quantize.Quantizer = quantize.CPU{}
	if dev != nil {
		g, err := quantize.NewGPU(dev, quantize.GPUOptions{})
		if err != nil {
			return nil, "", err
		}
		qz = g
	}
	out, err := quantize.Apply(ctx, src, plan, qz)
	if err != nil {
		return nil, "", err
	}
	return out, qz.String(), nil
}

func newQuantize() *cobra.Command {
	var (
		qf    quantFlags
		force bool
	)
	cmd := &cobra.Command{
		Use:   "quantize IN OUT.rkv [--int8 SPEC] [--nf4 SPEC]",
		Short: "Quantize a model to web-rwkv's Int8/NF4 layouts and save it as a .rkv artifact",
		Long: `Quantize reads any model file, quantizes the matrices web-rwkv quantizes (att key, value,
receptance, output, gate; ffn key, value, receptance) in the layers each SPEC selects, and writes a
.rkv artifact that every rwkvkit command loads. SPEC is all, N (layers 0..N-1, like web-rwkv's
--quant N) or ranges like 0-5,9; where --int8 and --nf4 both cover a layer, the later flag wins.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(qf.rules) == 0 {
				return fmt.Errorf("nothing to do: give --int8 SPEC and/or --nf4 SPEC")
			}
			return runArtifactJob(cmd, artifactJob{base: args[0], out: args[1], quant: &qf, force: force})
		},
	}
	qf.register(cmd)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace OUT if it exists")
	return cmd
}

// prefetchBytes bounds the tensors merged and quantized ahead of the writer:
// two of the largest matrices of a 1.5B model, small beside any model.
const prefetchBytes = 32 << 20

// An artifactJob is what quantize and merge share: read a base model, merge
// adapters into it, quantize it, and save the result as a .rkv artifact.
type artifactJob struct {
	base, out string
	blends    []blendSpec
	patterns  []patternSpec
	quant     *quantFlags
	force     bool
}

// runArtifactJob opens the device the flags name and builds the artifact.
func runArtifactJob(cmd *cobra.Command, job artifactJob) error {
	dev, err := openDevice(job.quant.device, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if dev != nil {
		defer dev.Close()
	}
	return buildArtifact(cmd.Context(), cmd.ErrOrStderr(), job, dev)
}

// buildArtifact does the job on dev (nil: the CPU).
func buildArtifact(ctx context.Context, log io.Writer, job artifactJob, dev *gpu.Device) error {
	src, err := openModel(job.base)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := format.Detect(src)
	if err != nil {
		return fmt.Errorf("%s: %w", job.base, err)
	}
	// The artifact is stored in web-rwkv's layout, in the source's precision.
	model, err := format.WebRWKV(src)
	if err != nil {
		return fmt.Errorf("%s: %w", job.base, err)
	}
	prov := serialize.Provenance{Tool: "rwkvkit", ToolVersion: version}
	// The base's SHA-256 takes a whole read of the file, about as long as
	// the rest of the work, so it is computed while the artifact is written;
	// the header holds a placeholder of the same length until it is known.
	fi, err := os.Stat(job.base)
	if err != nil {
		return err
	}
	digest := make(chan error, 1)
	var baseDigest serialize.FileDigest
	go func() {
		var err error
		baseDigest, err = serialize.DigestFile(job.base)
		digest <- err
	}()
	prov.Sources = append(prov.Sources, serialize.FileDigest{Name: filepath.Base(job.base), Size: fi.Size(), SHA256: strings.Repeat("0", 64)})

	if len(job.blends) > 0 {
		var loras []serialize.LoRA
		model, loras, err = mergeLoRAs(model, job, dev)
		if err != nil {
			return err
		}
		defer model.Close() // the adapters' files
		prov.LoRAs = loras
	}
	model, device, err := job.quant.apply(ctx, model, info, dev)
	if err != nil {
		return fmt.Errorf("%s: %w", job.base, err)
	}
	// While one tensor is written, the next ones are merged and quantized.
	model = format.Prefetch(model, prefetchBytes)
	prov.Quantization.Int8, prov.Quantization.NF4 = job.quant.specs()
	prov.Quantization.Device = device
	bar := newProgress(0, filepath.Base(job.out))
	opts := &serialize.Options{Model: &info, Provenance: prov, Progress: func(written, total int64) {
		bar.ChangeMax64(total)
		bar.Set64(written)
	}}
	opts.Finalize = func() (serialize.Provenance, error) {
		if err := <-digest; err != nil {
			return prov, err
		}
		final := prov
		final.Sources = []serialize.FileDigest{baseDigest}
		return final, nil
	}
	if err := serialize.WriteFile(ctx, job.out, model, job.force, opts); err != nil {
		return fmt.Errorf("%s: %w", job.out, err)
	}
	bar.Finish()
	fmt.Fprintf(log, "wrote %s\n", job.out)
	return nil
}
