package inspect

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/artifact"
	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gguf"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/statefile"
)

const tiny = "../fixtures/rwkv-tiny/"

func TestModel(t *testing.T) {
	path := tiny + "tiny-rwkv-6v0-1m.pth"
	r, err := File(context.Background(), path, &Options{Tensors: true})
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if r.Contents != Model || r.Kind != "pth" || r.SizeBytes != fi.Size() || r.Model.Version != format.V6 {
		t.Errorf("%+v", r)
	}
	if r.Parameters != r.Model.Params || r.Parameters != 1028352 {
		t.Errorf("%d parameters, the model says %d (fixture: 1028352)", r.Parameters, r.Model.Params)
	}
	if len(r.DTypes) != 1 || r.DTypes[0].DType != "BF16" || r.DTypes[0].Tensors != len(r.Tensors) || r.DTypes[0].SizeBytes != 2*r.Parameters {
		t.Errorf("dtypes %+v for %d tensors", r.DTypes, len(r.Tensors))
	}
	r, err = File(context.Background(), path, nil)
	if err != nil || r.Tensors != nil {
		t.Errorf("without Tensors: %d listed, %v", len(r.Tensors), err)
	}
}

func TestLoRA(t *testing.T) {
	r, err := File(context.Background(), tiny+"tiny-rwkv-7v0-834K.demo-lora.st", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := r.LoRA
	if r.Contents != LoRA || a == nil || a.Naming != "web-rwkv" || !slices.Equal(a.Ranks, []int{4}) || a.Pairs != 24 || a.Full != 0 {
		t.Fatalf("%+v, %+v", r, a)
	}
	if len(a.Targets) != 2 || a.Targets[0].Tensor != "att.key" || a.Targets[1].Tensor != "att.value" ||
		quantize.FormatLayers(a.Targets[1].Layers) != "0-11" {
		t.Errorf("targets %+v", a.Targets)
	}
}

func TestState(t *testing.T) {
	src, err := format.Open(tiny + "tiny-rwkv-7v0-834K.pth")
	if err != nil {
		t.Fatal(err)
	}
	info, err := format.Detect(src)
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "s.rkv")
	if err := statefile.Save(context.Background(), path, engine.NewSnapshot(info), false); err != nil {
		t.Fatal(err)
	}
	r, err := File(context.Background(), path, nil)
	if err != nil || r.Contents != State || r.State.Layers != 12 {
		t.Errorf("%+v, %v", r, err)
	}
}

// Verify reads every payload: a good artifact passes, one changed byte is
// an error naming the file and the tensor; formats without checksums are
// refused.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "q.rkv")
	spec := &artifact.Spec{Base: tiny + "st/tiny-rwkv-7v0-834K.st", Quantize: []quantize.Rule{{Kind: format.NF4Block, Layers: "all"}}}
	if _, err := artifact.Build(context.Background(), good, spec); err != nil {
		t.Fatal(err)
	}
	var progressed int64
	r, err := File(context.Background(), good, &Options{Verify: true, Progress: func(done, total int64) { progressed = done }})
	if err != nil || r.Verified == nil || !*r.Verified || progressed == 0 {
		t.Fatalf("%v, %v, progress %d", r, err, progressed)
	}
	b, _ := os.ReadFile(good)
	b[len(b)/2] ^= 1 // deep in the payloads: the header stays valid
	bad := filepath.Join(dir, "bad.rkv")
	os.WriteFile(bad, b, 0o644)
	if _, err := File(context.Background(), bad, &Options{Verify: true}); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("corrupt payload: %v", err)
	}
	if _, err := File(context.Background(), tiny+"tiny-rwkv-7v0-834K.pth", &Options{Verify: true}); !errors.Is(err, ErrNoChecksums) {
		t.Errorf(".pth: %v, want ErrNoChecksums", err)
	}
}

// A GGUF reports its tensors as the file stores them beside what rwkvkit
// reads: a Q8_0 matrix takes 34 bytes a block of 32 values (ggml's
// block_q8_0: a float16 scale and 32 int8), and is read as float32; the
// parameters agree. Other formats store what they are read as.
func TestGGUFStored(t *testing.T) {
	src, err := format.Open(tiny + "tiny-rwkv-6v0-1m.pth")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := gguf.WriteFile(context.Background(), path, src, false, &gguf.Options{Type: gguf.TypeQ8_0}); err != nil {
		t.Fatal(err)
	}
	r, err := File(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	var q8 *DTypeSummary
	var params, bytes int64
	for i, s := range r.Stored {
		if s.DType == "Q8_0" {
			q8 = &r.Stored[i]
		}
		params += s.Parameters
		bytes += s.SizeBytes
	}
	if q8 == nil || q8.Parameters%32 != 0 || q8.SizeBytes != q8.Parameters/32*34 {
		t.Errorf("stored %+v, want Q8_0 at 34 bytes a block of 32", r.Stored)
	}
	if params != r.Parameters || bytes > fi.Size() {
		t.Errorf("stored: %d parameters in %d bytes; read: %d parameters; the file: %d bytes", params, bytes, r.Parameters, fi.Size())
	}
	if len(r.DTypes) != 1 || r.DTypes[0].DType != "F32" {
		t.Errorf("read as %+v, want F32 only", r.DTypes)
	}
	if r, err := File(context.Background(), tiny+"tiny-rwkv-6v0-1m.pth", nil); err != nil || r.Stored != nil {
		t.Errorf(".pth: stored %+v, %v", r.Stored, err)
	}
}
