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
	// NoSync commits the output without waiting for it to reach the disk
	// (atomicfile.Options.NoSync): faster, but not durable.
	NoSync bool
	// Progress, if set, is called as the artifact is written with the
	// bytes written so far and the file's total size.
	Progress func(written, total int64)
}

// A LoRA is an adapter file and the strength it is merged at.
type LoRA struct {
	Path  string
	Alpha float32
}

// gpuChunkBytes is the float16 input a GPU quantizer moves per step. Its
// buffers, three chunks in flight, stay mapped in host memory for the whole
// build: 8 MiB chunks instead of the quantizer's default 16 take 60 MB less
// of it and quantize as fast (BENCHMARKS.md).
const gpuChunkBytes = 8 << 20

// prefetchBytes bounds the tensors merged and quantized ahead of the writer:
// two of the largest matrices of a 1.5B model, small beside any model; and
// at most a quarter of the model's largest tensor, since memory is to stay
// within a small multiple of that.
const prefetchBytes = 32 << 20

func prefetchBudget(src *format.Source) int64 {
	var largest int64
	for _, t := range src.Tensors {
		largest = max(largest, t.Size())
	}
	return max(min(prefetchBytes, largest/4), 1<<20)
}

// A Result describes a written artifact.
type Result struct {
	Tensors     int
	Params      int64 // elements, over all tensors
	InputBytes  int64 // size of the base model file
	OutputBytes int64 // size of the artifact
}

// BitsPerWeight is the artifact's size in bits per parameter, headers
// included (as llama.cpp reports a model's size): a little over 16 for
// float16; Int8's and NF4's block scales add 0.125 and 0.25 bits to their
// 8 and 4.
func (r Result) BitsPerWeight() float64 {
	if r.Params == 0 {
		return 0
	}
	return 8 * float64(r.OutputBytes) / float64(r.Params)
}

// Check does everything Build does before the work starts — the output
// path, the base model, every adapter against it, every pattern, the
// quantization rules against its layers — computing nothing, so that a
// mistake is reported before a device is opened.
func Check(ctx context.Context, out string, spec *Spec) error {
	src, info, m, err := open(out, spec)
	if err != nil {
		return err
	}
	defer src.Close()
	if len(spec.Quantize) > 0 {
		if _, err := quantize.NewPlan(info.Layers, spec.Quantize...); err != nil {
			return fmt.Errorf("%s: %w", spec.Base, err)
		}
	}
	if len(spec.LoRAs) == 0 {
		return nil
	}
	merged, _, err := merge(ctx, m, spec.Base, spec.LoRAs, spec.Patterns, nil, false)
	if err != nil {
		return err
	}
	return merged.Close()
}

// open checks the output path, opens the base and returns it, its model
// and its web-rwkv layout (in the source's precision, as it is stored).
func open(out string, spec *Spec) (*format.Source, format.ModelInfo, *format.Source, error) {
	inputs := []string{spec.Base}
	for _, l := range spec.LoRAs {
		inputs = append(inputs, l.Path)
	}
	if err := atomicfile.Check(out, spec.Force, inputs...); err != nil {
		return nil, format.ModelInfo{}, nil, err
	}
	if err := format.CheckExtension(out, "rkv"); err != nil {
		return nil, format.ModelInfo{}, nil, err // before any work, as the writer would at its end
	}
	src, err := model.Open(spec.Base)
	if err != nil {
		return nil, format.ModelInfo{}, nil, err
	}
	info, err := format.Detect(src)
	if err == nil {
		var m *format.Source
		if m, err = format.WebRWKV(src); err == nil {
			return src, info, m, nil
		}
	}
	src.Close()
	return nil, format.ModelInfo{}, nil, fmt.Errorf("%s: %w", spec.Base, err)
}

// Build writes the artifact spec describes to out, through a temporary file
// renamed at the end (package atomicfile): on any error, or when ctx is
// cancelled, nothing is left behind. Errors name the file at fault.
func Build(ctx context.Context, out string, spec *Spec) (Result, error) {
	defer tightenGC()()
	src, info, m, err := open(out, spec)
	if err != nil {
		return Result{}, err
	}
	defer src.Close()
	prov := serialize.Provenance{Tool: "rwkvkit", ToolVersion: spec.ToolVersion}
	// The base's SHA-256 takes a whole read of the file, about as long as
	// the rest of the work, so it is computed while the artifact is written;
	// the header holds a placeholder of the same length until it is known.
	fi, err := os.Stat(spec.Base)
	if err != nil {
		return Result{}, err
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
		m, loras, err = merge(ctx, m, spec.Base, spec.LoRAs, spec.Patterns, spec.Device, true)
		if err != nil {
			return Result{}, err
		}
		defer m.Close() // the adapters' files
		prov.LoRAs = loras
		for _, p := range spec.Patterns {
			prov.LoRAPatterns = append(prov.LoRAPatterns, serialize.LoRAPattern{Regexp: p.Regexp.String(), Alpha: float64(p.Alpha)})
		}
	}
	m, q, release, err := quantized(ctx, m, info, spec.Quantize, spec.Device)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", spec.Base, err)
	}
	defer release()
	// While one tensor is written, the next ones are merged and quantized.
	m = format.Prefetch(m, prefetchBudget(src))
	prov.Quantization = q
	prov.Quantization.Int8, prov.Quantization.NF4, prov.Quantization.SF4 = lastSpecs(spec.Quantize)
	opts := &serialize.Options{Model: &info, Provenance: prov, Progress: spec.Progress, NoSync: spec.NoSync}
	opts.Finalize = func() (serialize.Provenance, error) {
		if <-digested; digestErr != nil {
			return prov, digestErr
		}
		final := prov
		final.Sources = []serialize.FileDigest{baseDigest}
		return final, nil
	}
	if err := serialize.WriteFile(ctx, out, m, spec.Force, opts); err != nil {
		return Result{}, fmt.Errorf("%s: %w", out, err)
	}
	res := Result{Tensors: len(m.Tensors), InputBytes: fi.Size()}
	for _, t := range m.Tensors {
		res.Params += t.Len()
	}
	if fo, err := os.Stat(out); err == nil {
		res.OutputBytes = fo.Size()
	}
	return res, nil
}

// quantized applies the rules to src on dev (nil: the CPU), returning the
// lazy quantized source, the plan and the quantizer that computes it (zero
// when there are no rules) and a function releasing the quantizer once the
// source has been read.
func quantized(ctx context.Context, src *format.Source, info format.ModelInfo, rules []quantize.Rule, dev *gpu.Device) (*format.Source, serialize.Quantization, func(), error) {
	release := func() {}
	var none serialize.Quantization
	if len(rules) == 0 {
		return src, none, release, nil
	}
	plan, err := quantize.NewPlan(info.Layers, rules...)
	if err != nil {
		return nil, none, nil, err
	}
	var qz quantize.Quantizer = quantize.CPU{}
	if dev != nil {
		g, err := quantize.NewGPU(dev, quantize.GPUOptions{ChunkBytes: gpuChunkBytes})
		if err != nil {
			return nil, none, nil, err
		}
		qz, release = g, g.Close
	}
	out, err := quantize.Apply(ctx, src, plan, qz)
	if err == nil {
		err = fewAtATime(src, out, 1)
	}
	if err != nil {
		release()
		return nil, none, nil, err
	}
	return out, serialize.Quantization{Plan: plan.String(), Device: qz.String()}, release, nil
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
