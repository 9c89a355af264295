package pth

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

// realFiles returns every zip checkpoint of the fixtures (torch's own), a
// synthetic 24-layer RWKV-7 checkpoint, and a synthetic one of 5000
// one-element tensors, where the pickle is the largest part of the file a
// real checkpoint can have.
func realFiles(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join(edgeDir, "*.pth"))
	tinies, _ := filepath.Glob("../fixtures/rwkv-tiny/*.pth")
	for _, name := range append(files, tinies...) {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if dataPkl(t, data) != nil {
			out[filepath.Base(name)] = data
		}
	}
	src, err := synth.RWKV7(synth.Config{Layers: 24, Embed: 64, Vocab: 256, HeadSize: 16, DecayLoRA: 8, ALoRA: 8, VLoRA: 8, GLoRA: 8}, format.BF16, 1)
	if err != nil {
		t.Fatal(err)
	}
	out["synth 24 layers"] = writeSynth(t, src)
	small := &format.Source{}
	for i := range 5000 {
		tn, err := format.NewTensor(fmt.Sprintf("blocks.%d.att.x", i), format.F16, []int64{1}, format.BytesOpener(make([]byte, 2)))
		if err != nil {
			t.Fatal(err)
		}
		small.Tensors = append(small.Tensors, tn)
	}
	out["synth 5000 × 1 element"] = writeSynth(t, small)
	return out
}

func writeSynth(t testing.TB, src *format.Source) []byte {
	var buf bytes.Buffer
	if err := synth.WritePTH(&buf, src); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dataPkl(t testing.TB, data []byte) []byte {
	z, err := openZipDir(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil
	}
	off, n, err := z.record(z.records["data.pkl"])
	if err != nil {
		t.Fatal(err)
	}
	return data[off : off+n]
}

// unpickleCharged unpickles pkl and builds its source, returning the
// charge against the budget and what was really allocated.
func unpickleCharged(pkl []byte) (charged, allocated int64, err error) {
	next := int64(0)
	l := &loader{legacy: false, storages: map[string]*storage{}, views: map[string]*storage{},
		resolve: func(_ string, nbytes int64) (*storage, error) {
			next += nbytes
			return &storage{off: next - nbytes}, nil
		}}
	l.budget = format.NewBudget(0, 0, 1<<62)
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	obj, err := l.unpickle(pkl)
	if err == nil {
		_, err = source(obj, bytes.NewReader(nil), false)
	}
	runtime.ReadMemStats(&b)
	return 1<<62 - l.budget.Left(), int64(b.TotalAlloc - a.TotalAlloc), err
}

// The budget's charges cover what unpickling really allocates, and real
// checkpoints stay far inside the budget of their file.
func TestBudgetOfRealPickles(t *testing.T) {
	for name, data := range realFiles(t) {
		pkl := dataPkl(t, data)
		charged, allocated, err := unpickleCharged(pkl)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		t.Logf("%-24s %8d-byte pickle in %9d bytes: charged %5.2f, allocated %5.2f bytes per pickle byte; %.2f per file byte",
			name, len(pkl), len(data), float64(charged)/float64(len(pkl)), float64(allocated)/float64(len(pkl)), float64(charged)/float64(len(data)))
		if allocated > charged+4096 {
			t.Errorf("%s: allocated %d bytes, charged %d", name, allocated, charged)
		}
		if charged > budget(int64(len(data))).Left()/2 {
			t.Errorf("%s: charged %d bytes, more than half the budget of a %d-byte file", name, charged, len(data))
		}
	}
}
