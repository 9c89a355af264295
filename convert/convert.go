// Package convert turns any model, LoRA or state file rwkvkit reads into
// the float16 safetensors file web-rwkv and ai00 load, byte for byte as
// web-rwkv's convert_safetensors.py writes it: quantized tensors
// dequantized, names renamed and lower-cased, low-rank matrices transposed
// (docs/web-rwkv-layout.md), every tensor rounded once to float16.
package convert

import (
	"context"
	"fmt"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/safetensors"
)

// WebRWKV returns src as web-rwkv's float16 layout. It is lazy: a tensor is
// read, transformed and cast when it is opened, so memory follows the
// largest tensor. Closing the result closes src.
func WebRWKV(src *format.Source) (*format.Source, error) {
	s, err := quantize.Dequantized(src)
	if err != nil {
		return nil, err
	}
	s, err = format.WebRWKV(s)
	if err != nil {
		return nil, err
	}
	return format.CastF16(s)
}

// Options tune File. A nil *Options means the defaults.
type Options struct {
	// Force replaces an existing output file.
	Force bool
	// Progress, if set, is called as the output is written with the bytes
	// written so far and the file's total size.
	Progress func(written, total int64)
}

// Result describes a finished conversion.
type Result struct {
	Tensors int // tensors written
}

// File converts the file at in and writes the result to out through a
// temporary file renamed at the end (package atomicfile): on any error, or
// when ctx is cancelled, nothing is left behind and an existing out is
// untouched. Errors name the file at fault.
func File(ctx context.Context, in, out string, opts *Options) (Result, error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := atomicfile.Check(out, opts.Force, in); err != nil {
		return Result{}, err
	}
	src, err := model.Open(in)
	if err != nil {
		return Result{}, err
	}
	defer src.Close()
	conv, err := WebRWKV(src)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", in, err)
	}
	if err := safetensors.WriteFile(ctx, out, conv, opts.Force, &safetensors.Options{Progress: opts.Progress}); err != nil {
		return Result{}, fmt.Errorf("%s: %w", out, err)
	}
	return Result{Tensors: len(conv.Tensors)}, nil
}
