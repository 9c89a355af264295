// Package artifact builds .rkv artifacts (package serialize): a base model,
// with LoRA adapters merged into it and its matrices quantized as a plan
// says, on the CPU or a GPU, stored in web-rwkv's layout with a record of
// how it was made (the base and every adapter with its size, SHA-256 and
// alpha; the quantization; the tool).
//
// A build streams: tensors are merged and quantized a few ahead of the
// writer and written one at a time, so memory follows the largest tensor;
// the base's SHA-256 is computed while the artifact is written.
package artifact

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/lora"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/serialize"
)

// A Spec says what to build.
type Spec struct {
	// Base is the model file the artifact is made from.
	Base string
	// LoRAs are merged into the base in order.
	LoRAs []LoRA
	// Patterns override the alpha of every adapter for the tensors whose
	// web-rwkv name they match (the last match wins).
	Patterns []lora.Pattern
	// Quantize lists the quantization rules in the order given: where two
	// cover a layer, the later wins. None: the weights stay in the base's
	// precision.
	Quantize []quantize.Rule
	// Device merges and quantizes on a GPU; nil means the CPU.
	Device *gpu.Device
	// ToolVersion is recorded in the provenance as the version of rwkvkit.
	ToolVersion string
	// Force replaces an existing output file.
	Force bool
	// Progress, if set, is called as the artifact is written with the
	// bytes written so far and the file's total size.
	Progress func(written, total int64)
}

// A LoRA is an adapter file and the strength it is merged at.
type LoRA struct {
	Path  string
	Alpha float32
}

// prefetchBytes bounds the tensors merged and quantized ahead of the writer:
// two of the largest matrices of a 1.5B model, small beside any model.
const prefetchBytes = 32 << 20

// Build writes the artifact spec describes to out, through a temporary file
// renamed at the end (package atomicfile): on any error, or when ctx is
// cancelled, nothing is left behind. Errors name the file at fault.
func Build(ctx context.Context, out string, spec *Spec) error {
	inputs := []string{spec.Base}
	for _, l := range spec.LoRAs {
		inputs = append(inputs, l.Path)
	}
	if err := atomicfile.Check(out, spec.Force, inputs...); err != nil {
		return err
	}
	src, err := model.Open(spec.Base)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := format.Detect(src)
	if err != nil {
		return fmt.Errorf("%s: %w", spec.Base, err)
	}
	// The artifact is stored in web-rwkv's layout, in the source's precision.
	m, err := format.WebRWKV(src)
	if err != nil {
		return fmt.Errorf("%s: %w", spec.Base, err)
	}
	prov := serialize.Provenance{Tool: "rwkvkit", ToolVersion: spec.ToolVersion}
	// The base's SHA-256 takes a whole read of the file, about as long as
	// the rest of the work, so it is computed while the artifact is written;
	// the header holds a placeholder of the same length until it is known.
	fi, err := os.Stat(spec.Base)
	if err != nil {
		return err
	}
	digestCtx, stopDigest := context.WithCancel(ctx)
	digested := make(chan struct{})
	var baseDigest serialize.FileDigest
	var digestErr error
	go func() {
		defer close(digested)
		baseDigest, digestErr = digestFile(digestCtx, spec.Base)
	}()
	// On failure the digest stops; either way it is done (and its file
	// closed) when Build returns.
	defer func() { stopDigest(); <-digested }()
	prov.Sources = append(prov.Sources, serialize.FileDigest{Name: filepath.Base(spec.Base), Size: fi.Size(), SHA256: strings.Repeat("0", 64)})

	if len(spec.LoRAs) > 0 {
		var loras []serialize.LoRA
		m, loras, err = Merge(ctx, m, spec.Base, spec.LoRAs, spec.Patterns, spec.Device)
		if err != nil {
			return err
		}
		defer m.Close() // the adapters' files
		prov.LoRAs = loras
	}
	m, device, release, err := quantized(ctx, m, info, spec.Quantize, spec.Device)
	if err != nil {
		return fmt.Errorf("%s: %w", spec.Base, err)
	}
	defer release()
	// While one tensor is written, the next ones are merged and quantized.
	m = format.Prefetch(m, prefetchBytes)
	prov.Quantization.Int8, prov.Quantization.NF4, prov.Quantization.SF4 = lastSpecs(spec.Quantize)
	prov.Quantization.Device = device
	opts := &serialize.Options{Model: &info, Provenance: prov, Progress: spec.Progress}
	opts.Finalize = func() (serialize.Provenance, error) {
		if <-digested; digestErr != nil {
			return prov, digestErr
		}
		final := prov
		final.Sources = []serialize.FileDigest{baseDigest}
		return final, nil
	}
	if err := serialize.WriteFile(ctx, out, m, spec.Force, opts); err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	return nil
}

// quantized applies the rules to src on dev (nil: the CPU), returning the
// lazy quantized source, a description of the quantizer (empty when there
// are no rules) and a function releasing the quantizer once the source has
// been read.
func quantized(ctx context.Context, src *format.Source, info format.ModelInfo, rules []quantize.Rule, dev *gpu.Device) (*format.Source, string, func(), error) {
	release := func() {}
	if len(rules) == 0 {
		return src, "", release, nil
	}
	plan, err := quantize.NewPlan(info.Layers, rules...)
	if err != nil {
		return nil, "", nil, err
	}
	var qz quantize.Quantizer = quantize.CPU{}
	if dev != nil {
		g, err := quantize.NewGPU(dev, quantize.GPUOptions{})
		if err != nil {
			return nil, "", nil, err
		}
		qz, release = g, g.Close
	}
	out, err := quantize.Apply(ctx, src, plan, qz)
	if err != nil {
		release()
		return nil, "", nil, err
	}
	return out, qz.String(), release, nil
}

// lastSpecs returns the last Int8, NF4 and SF4 layer specs of rules.
func lastSpecs(rules []quantize.Rule) (int8Spec, nf4Spec, sf4Spec string) {
	for _, r := range rules {
		switch r.Kind {
		case format.Int8Block:
			int8Spec = r.Layers
		case format.NF4Block:
			nf4Spec = r.Layers
		case format.SF4Block:
			sf4Spec = r.Layers
		}
	}
	return
}

// digestFile is serialize.DigestFile, stopped by ctx.
func digestFile(ctx context.Context, path string) (serialize.FileDigest, error) {
	f, err := os.Open(path)
	if err != nil {
		return serialize.FileDigest{}, err
	}
	defer f.Close()
	return serialize.Digest(filepath.Base(path), ctxReader{ctx, f})
}

// ctxReader fails once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
