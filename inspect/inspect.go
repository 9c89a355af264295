// Package inspect describes what a file rwkvkit reads holds: a model (its
// RWKV version and dimensions), a LoRA adapter (its ranks and the tensors
// it changes), a state, or none of these; its size, a summary of its
// dtypes and parameters, its metadata and, for an .rkv artifact, how it
// was made. It can read every payload of an artifact to check its
// checksums.
package inspect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gguf"
	"github.com/rwkvkit/rwkvkit/lora"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/serialize"
)

// What a file holds.
const (
	Model   = "model"
	LoRA    = "lora"
	State   = "state"
	Unknown = "unknown"
)

// A Report describes one file. Its JSON form uses snake_case keys, sizes
// in bytes.
type Report struct {
	File       string            `json:"file"`
	SizeBytes  int64             `json:"size_bytes"`
	Kind       string            `json:"kind"`     // the file format: pth, safetensors, rkv, gguf
	Contents   string            `json:"contents"` // Model, LoRA, State or Unknown
	Model      *format.ModelInfo `json:"model,omitempty"`
	Layout     string            `json:"layout,omitempty"`
	NotModel   string            `json:"not_model,omitempty"` // why it is not a model, when it is not
	LoRA       *Adapter          `json:"lora,omitempty"`
	State      *StateInfo        `json:"state,omitempty"`
	Parameters int64             `json:"parameters"` // elements, over all tensors
	DTypes     []DTypeSummary    `json:"dtypes"`
	// Stored is, for a GGUF, its tensors as the file stores them (ggml
	// types, their bytes): DTypes are the tensors as rwkvkit reads them,
	// block-quantized ones dequantized to float32 and fused ones split.
	Stored     []DTypeSummary        `json:"stored,omitempty"`
	Metadata   map[string]string     `json:"metadata,omitempty"`
	Provenance *serialize.Provenance `json:"provenance,omitempty"`
	// Verified is set by a checksum check: every payload of the artifact
	// was read and matched its checksum.
	Verified *bool    `json:"checksums_verified,omitempty"`
	Tensors  []Tensor `json:"tensors,omitempty"`
}

// A DTypeSummary counts the tensors stored as one dtype.
type DTypeSummary struct {
	DType      string `json:"dtype"`
	Tensors    int    `json:"tensors"`
	Parameters int64  `json:"parameters"`
	SizeBytes  int64  `json:"size_bytes"`
}

// A Tensor is one entry of the tensor list.
type Tensor struct {
	Name      string  `json:"name"`
	DType     string  `json:"dtype"`
	Shape     []int64 `json:"shape"`
	SizeBytes int64   `json:"size_bytes"`
}

// StateInfo describes a state file.
type StateInfo struct {
	Layers int     `json:"layers"`
	Shape  []int64 `json:"time_state_shape,omitempty"` // of one layer's memory
}

// Options tune File. A nil *Options means the defaults: no tensor list,
// no checksum check.
type Options struct {
	// Tensors lists every tensor in the report.
	Tensors bool
	// Verify reads every payload of an .rkv artifact, checking its length
	// and checksum; the first mismatch is File's error. Other formats
	// carry no checksums: asking is an error.
	Verify bool
	// Progress, if set, is called during Verify with the bytes read so far
	// and the total.
	Progress func(done, total int64)
}

// ErrNoChecksums is returned when Verify is asked of a format without
// checksums.
var ErrNoChecksums = errors.New("only .rkv artifacts carry checksums")

// File describes the file at path. Errors (a file no reader knows, a
// corrupt payload under Verify) name the file.
func File(ctx context.Context, path string, opts *Options) (*Report, error) {
	if opts == nil {
		opts = &Options{}
	}
	src, err := model.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	r := &Report{File: path, Kind: src.Format, Metadata: src.Metadata}
	if fi, err := os.Stat(path); err == nil {
		r.SizeBytes = fi.Size()
	}
	var header *serialize.Header
	switch src.Format {
	case "rkv":
		if header, err = serialize.ReadHeaderFile(path); err != nil {
			return nil, err
		}
		r.Provenance = &header.Provenance
	case "gguf":
		if r.Stored, err = ggufStored(path); err != nil {
			return nil, err
		}
	}
	r.describe(src, header)
	r.summarise(src, opts.Tensors)
	if opts.Verify {
		if header == nil {
			return nil, fmt.Errorf("%s: %w (this is %s)", path, ErrNoChecksums, src.Format)
		}
		if err := verify(ctx, src, opts.Progress); err != nil {
			return nil, format.InFile(path, err)
		}
		ok := true
		r.Verified = &ok
	}
	return r, nil
}

// ggufStored summarises the tensors of the GGUF at path by ggml type.
func ggufStored(path string) ([]DTypeSummary, error) {
	g, err := format.ReadPath(path, gguf.ReadFile)
	if err != nil {
		return nil, err
	}
	by := summaries[gguf.Type]{}
	for _, t := range g.Tensors {
		n := int64(1)
		for _, d := range t.Dims {
			n *= d // checked against the file by ReadFile
		}
		by.add(t.Type, t.Type.String(), n, t.Size)
	}
	return by.sorted(), nil
}

// summaries sums tensors by their type.
type summaries[K comparable] map[K]*DTypeSummary

func (by summaries[K]) add(k K, name string, params, size int64) {
	s := by[k]
	if s == nil {
		s = &DTypeSummary{DType: name}
		by[k] = s
	}
	s.Tensors++
	s.Parameters += params
	s.SizeBytes += size
}

// sorted lists the summaries most bytes first, then by name, so that a
// report reads the same each time.
func (by summaries[K]) sorted() []DTypeSummary {
	out := make([]DTypeSummary, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b DTypeSummary) int {
		return cmp.Or(cmp.Compare(b.SizeBytes, a.SizeBytes), cmp.Compare(a.DType, b.DType))
	})
	return out
}

// describe says what src holds.
func (r *Report) describe(src *format.Source, header *serialize.Header) {
	info, err := format.Detect(src)
	if err == nil {
		r.Contents, r.Model, r.Layout = Model, &info, info.Layout.String()
		return
	}
	r.NotModel = err.Error()
	if header != nil && header.State != nil {
		s := header.State
		r.Contents, r.State = State, &StateInfo{Layers: s.Layers}
		return
	}
	if st := stateOf(src); st != nil {
		r.Contents, r.State = State, st
		return
	}
	if ad, err := lora.Open(src); err == nil {
		r.Contents, r.LoRA = LoRA, adapterOf(ad)
		return
	}
	r.Contents = Unknown
}

// stateOf describes a state-tuned file: blocks.N.att.time_state per layer.
func stateOf(src *format.Source) *StateInfo {
	var st *StateInfo
	for _, t := range src.Tensors {
		rest, ok := strings.CutPrefix(t.Name, "blocks.")
		if !ok || !strings.HasSuffix(rest, ".att.time_state") {
			continue
		}
		if st == nil {
			st = &StateInfo{Shape: t.Shape}
		}
		st.Layers++
	}
	return st
}

func (r *Report) summarise(src *format.Source, list bool) {
	by := summaries[format.DType]{}
	for _, t := range src.Tensors {
		by.add(t.DType, t.DType.String(), t.Len(), t.Size())
		r.Parameters += t.Len()
		if list {
			r.Tensors = append(r.Tensors, Tensor{t.Name, t.DType.String(), t.Shape, t.Size()})
		}
	}
	r.DTypes = by.sorted()
}

// verify reads every tensor of src to its end; an .rkv reader checks each
// payload's length and checksum as it goes.
func verify(ctx context.Context, src *format.Source, progress func(done, total int64)) error {
	var total, done int64
	for _, t := range src.Tensors {
		total += t.Size()
	}
	buf := make([]byte, 1<<20)
	for _, t := range src.Tensors {
		if err := ctx.Err(); err != nil {
			return err
		}
		rc, err := t.Open()
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(io.Discard, rc, buf)
		rc.Close()
		if err != nil {
			return err
		}
		done += n
		if progress != nil {
			progress(done, total)
		}
	}
	return nil
}
