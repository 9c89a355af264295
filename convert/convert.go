// Package convert turns any model, LoRA or state file rwkvkit reads into
// the float16 safetensors file web-rwkv and ai00 load, byte for byte as
// web-rwkv's convert_safetensors.py writes it: quantized tensors
// dequantized, names renamed and lower-cased, low-rank matrices transposed
// (docs/web-rwkv-layout.md), every tensor rounded once to float16. It also
// writes RWKV-6/7 models as the GGUF llama.cpp runs (package gguf).
package convert

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gguf"
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
	// NoSync commits the output without waiting for it to reach the disk
	// (atomicfile.Options.NoSync): faster, but not durable.
	NoSync bool
	// Format is the output's format, "st" or "gguf"; empty means the one
	// out's extension names (".gguf": GGUF; anything else: .st).
	Format string
	// GGUFType is the type of a GGUF's large matrices (gguf.TypeF32, the
	// zero value, gguf.TypeF16 or gguf.TypeQ8_0).
	GGUFType gguf.Type
	// Progress, if set, is called as the output is written with the bytes
	// written so far and the file's total size.
	Progress func(written, total int64)
}

// Result describes a finished conversion.
type Result struct {
	Tensors     int   // tensors written
	Params      int64 // elements, over all tensors
	InputBytes  int64 // size of the input file
	OutputBytes int64 // size of the output file
}

// BitsPerWeight is the output's size in bits per parameter, headers
// included (as llama.cpp reports a model's size): a little over 16 for
// float16.
func (r Result) BitsPerWeight() float64 {
	if r.Params == 0 {
		return 0
	}
	return 8 * float64(r.OutputBytes) / float64(r.Params)
}

// measure fills in the sizes of res from the files and its parameters
// from src.
func measure(in, out string, src *format.Source) Result {
	res := Result{Tensors: len(src.Tensors)}
	for _, t := range src.Tensors {
		res.Params += t.Len()
	}
	if fi, err := os.Stat(in); err == nil {
		res.InputBytes = fi.Size()
	}
	if fo, err := os.Stat(out); err == nil {
		res.OutputBytes = fo.Size()
	}
	return res
}

// OutputFormat is the format File writes to out given Options.Format f:
// "st" or "gguf", f itself when set, else "gguf" for an out ending in .gguf
// and "st" otherwise.
func OutputFormat(out, f string) (string, error) {
	switch f {
	case "st", "gguf":
		return f, nil
	case "":
		if strings.EqualFold(filepath.Ext(out), ".gguf") {
			return "gguf", nil
		}
		return "st", nil
	}
	return "", fmt.Errorf("%s: unknown output format %q (st or gguf)", out, f)
}

// File converts the file at in and writes the result to out through a
// temporary file renamed at the end (package atomicfile): on any error, or
// when ctx is cancelled, nothing is left behind and an existing out is
// untouched. Errors name the file at fault.
func File(ctx context.Context, in, out string, opts *Options) (Result, error) {
	if opts == nil {
		opts = &Options{}
	}
	outFormat, err := OutputFormat(out, opts.Format)
	if err != nil {
		return Result{}, err
	}
	written := map[string]string{"st": "safetensors", "gguf": "gguf"}[outFormat]
	if err := atomicfile.Check(out, opts.Force, in); err != nil {
		return Result{}, err
	}
	// The output's name is checked before any work, as its writer would at
	// the end.
	if err := format.CheckExtension(out, written); err != nil {
		return Result{}, err
	}
	src, err := model.Open(in)
	if err != nil {
		return Result{}, err
	}
	defer src.Close()
	if outFormat == "gguf" {
		return toGGUF(ctx, in, out, src, opts)
	}
	conv, err := WebRWKV(src)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", in, err)
	}
	conv, stop := readAhead(conv)
	defer stop()
	if err := safetensors.WriteFile(ctx, out, conv, opts.Force, &safetensors.Options{Progress: opts.Progress, NoSync: opts.NoSync}); err != nil {
		return Result{}, fmt.Errorf("%s: %w", out, err)
	}
	return measure(in, out, conv), nil
}

// The converted tensors are read and cast ahead of the writer in chunks of
// streamChunk bytes, streamChunks at most, by up to streamWorkers
// goroutines (format.Stream). Each reads and casts at about the speed the
// writer copies into the page cache, so a few keep it from ever waiting.
// Writes of 1 MiB cost the system less than larger ones: on a 2-core Xeon
// under Linux 6.18, converting a 3 GB checkpoint in 2 MiB chunks took
// twice the system time of 1 MiB chunks, which took as much as 512 KiB.
const (
	streamChunk   = 1 << 20
	streamChunks  = 8
	streamWorkers = 4
)

// readAhead returns src, all float16, with its tensors in the order
// safetensors.Write writes float16 tensors (by name), read and cast ahead
// of the writer on other cores (format.Stream), so that reading and
// casting overlap with writing. Call stop once written.
func readAhead(src *format.Source) (out *format.Source, stop func()) {
	sorted := src.Derive()
	sorted.Tensors = slices.SortedFunc(slices.Values(src.Tensors), func(a, b *format.Tensor) int {
		return strings.Compare(a.Name, b.Name)
	})
	return format.Stream(sorted, streamChunk, streamChunks, min(streamWorkers, runtime.GOMAXPROCS(0)))
}

// toGGUF writes src as the GGUF llama.cpp runs (RWKV-6 and RWKV-7 only).
func toGGUF(ctx context.Context, in, out string, src *format.Source, opts *Options) (Result, error) {
	deq, err := quantize.Dequantized(src)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", in, err)
	}
	name := strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
	err = gguf.WriteFile(ctx, out, deq, opts.Force, &gguf.Options{Type: opts.GGUFType, Name: name, Progress: opts.Progress, NoSync: opts.NoSync})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", out, err)
	}
	f, err := model.Open(out)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	return measure(in, out, f), nil
}
