package statefile_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
	"github.com/rwkvkit/rwkvkit/runner"
	"github.com/rwkvkit/rwkvkit/safetensors"
	"github.com/rwkvkit/rwkvkit/serialize"
	"github.com/rwkvkit/rwkvkit/statefile"
)

const tiny = "../fixtures/rwkv-tiny/"

var tinyModels = []string{
	"tiny-rwkv-4v0-660K.pth", "tiny-rwkv-5v1-730K.pth", "tiny-rwkv-5v2-730K.pth",
	"tiny-rwkv-6v0-1m.pth", "tiny-rwkv-7v0-834K.pth",
}

func load(t testing.TB, path string) *runner.Model {
	t.Helper()
	src, err := format.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m, err := runner.Load(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newState(t testing.TB, m *runner.Model) engine.State {
	t.Helper()
	s, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func forward(t testing.TB, m *runner.Model, s engine.State, toks []int) []float32 {
	t.Helper()
	l, err := m.Forward(s, toks, true)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Prompt A then B in one state gives, bit for bit, the logits and the
// final state of A, the state saved to a file and loaded into a fresh
// state, then B: for all five tiny models.
func TestResumeBitForBit(t *testing.T) {
	dir := t.TempDir()
	for _, name := range tinyModels {
		t.Run(name, func(t *testing.T) {
			m := load(t, tiny+name)
			rng := rand.New(rand.NewPCG(3, 5))
			toks := func(n int) []int {
				out := make([]int, n)
				for i := range out {
					out[i] = rng.IntN(m.Info().Vocab)
				}
				return out
			}
			a, b := toks(23), toks(9)
			one := newState(t, m)
			forward(t, m, one, a)
			want := forward(t, m, one, b)
			wantState, _ := one.Snapshot()

			first := newState(t, m)
			forward(t, m, first, a)
			snap, _ := first.Snapshot()
			path := filepath.Join(dir, name+".state.rkv")
			if err := statefile.Save(context.Background(), path, snap, false); err != nil {
				t.Fatal(err)
			}
			loaded, err := statefile.Load(path, m.Info())
			if err != nil {
				t.Fatal(err)
			}
			if !bitsEqual(loaded.Data, snap.Data) {
				t.Fatal("the loaded state differs from the saved one")
			}
			resumed := newState(t, m)
			if err := resumed.Restore(loaded); err != nil {
				t.Fatal(err)
			}
			if got := forward(t, m, resumed, b); !bitsEqual(got, want) {
				t.Error("logits of B after the saved state differ from those of A then B")
			}
			if got, _ := resumed.Snapshot(); !bitsEqual(got.Data, wantState.Data) {
				t.Error("the final state after the saved state differs from that of A then B")
			}
			// The saved state matters: B from a fresh state predicts otherwise.
			if got := forward(t, m, newState(t, m), b); bitsEqual(got, want) {
				t.Error("B alone gives the logits of A then B")
			}
		})
	}
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// stateTuned writes a state-tuned checkpoint as RWKV-LM's state tuning
// saves one (torch.save of blocks.N.att.time_state, [H, N, N] indexed
// [head][value][key]), with value(l, h, v, k) at each place, and returns its
// source.
func stateTuned(t testing.TB, info format.ModelInfo, layers int, value func(l, h, v, k int) float32) *format.Source {
	t.Helper()
	H, N := info.Heads, info.HeadSize
	src := &format.Source{}
	for l := range layers {
		b := make([]byte, 4*H*N*N)
		for h := range H {
			for v := range N {
				for k := range N {
					binary.LittleEndian.PutUint32(b[4*((h*N+v)*N+k):], math.Float32bits(value(l, h, v, k)))
				}
			}
		}
		tn, err := format.NewTensor(fmt.Sprintf("blocks.%d.att.time_state", l), format.F32, []int64{int64(H), int64(N), int64(N)}, format.BytesOpener(b))
		if err != nil {
			t.Fatal(err)
		}
		src.Tensors = append(src.Tensors, tn)
	}
	return src
}

// A state-tuned .pth loads as the memory it means, in the index order of
// docs/rwkv-math.md: web-rwkv's read_state and time-mix shaders take
// time_state[h][a][b] as S[key b][value a] for v5 and v6 (which index S
// [key][value]) and as S[value a][key b] for v7 (which indexes S
// [value][key]); the token shifts start at zero. The same file converted as
// web-rwkv's converter does (time_state transposed, as safetensors) loads as
// the same state.
func TestLoadStateTuned(t *testing.T) {
	dir := t.TempDir()
	for _, name := range tinyModels[1:] {
		t.Run(name, func(t *testing.T) {
			m := load(t, tiny+name)
			info := m.Info()
			val := func(l, h, v, k int) float32 { return float32(l*4096+h*256+v*16+k) / 64 }
			src := stateTuned(t, info, info.Layers, val)
			pthPath := filepath.Join(dir, name+".state.pth")
			writePTH(t, pthPath, src)
			s, err := statefile.Load(pthPath, info)
			if err != nil {
				t.Fatal(err)
			}
			N := info.HeadSize
			for l := range info.Layers {
				if slices.ContainsFunc(append(s.AttShift(l), s.FFNShift(l)...), func(x float32) bool { return x != 0 }) {
					t.Fatalf("layer %d: token shifts are not zero", l)
				}
				mem := s.Mem(l)
				for h := range info.Heads {
					for v := range N {
						for k := range N {
							at := (h*N+k)*N + v // S[key][value]
							if info.Version == format.V7 {
								at = (h*N+v)*N + k // S[value][key]
							}
							if mem[at] != val(l, h, v, k) {
								t.Fatalf("layer %d head %d value %d key %d: %g, want %g", l, h, v, k, mem[at], val(l, h, v, k))
							}
						}
					}
				}
			}
			conv, err := format.WebRWKV(src)
			if err != nil {
				t.Fatal(err)
			}
			stPath := filepath.Join(dir, name+".state.st")
			if err := safetensors.WriteFile(context.Background(), stPath, conv, false, nil); err != nil {
				t.Fatal(err)
			}
			fromST, err := statefile.Load(stPath, info)
			if err != nil {
				t.Fatal(err)
			}
			if !bitsEqual(fromST.Data, s.Data) {
				t.Error("the converted .st loads as another state than the .pth")
			}
			// Saved as a state artifact, time_state keeps the checkpoint's
			// orientation and bytes (docs/ARTIFACT.md §11).
			rkvPath := filepath.Join(dir, name+".state.rkv")
			if err := statefile.Save(context.Background(), rkvPath, s, false); err != nil {
				t.Fatal(err)
			}
			art, err := format.Open(rkvPath)
			if err != nil {
				t.Fatal(err)
			}
			defer art.Close()
			for _, want := range src.Tensors {
				got := art.Lookup(want.Name)
				if got == nil {
					t.Fatalf("the artifact has no %s", want.Name)
				}
				gb, err1 := got.Bytes()
				wb, err2 := want.Bytes()
				if err1 != nil || err2 != nil || !bytes.Equal(gb, wb) || !slices.Equal(got.Shape, want.Shape) {
					t.Fatalf("%s: the artifact's tensor (%v) is not the checkpoint's (%v): %v %v", want.Name, got.Shape, want.Shape, err1, err2)
				}
			}
			// And the state drives the model: logits differ from a fresh start.
			st := newState(t, m)
			if err := st.Restore(s); err != nil {
				t.Fatal(err)
			}
			if bitsEqual(forward(t, m, st, []int{1, 2}), forward(t, m, newState(t, m), []int{1, 2})) {
				t.Error("the tuned state changes nothing")
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	v6, v7 := load(t, tiny+"tiny-rwkv-6v0-1m.pth"), load(t, tiny+"tiny-rwkv-7v0-834K.pth")
	s7, _ := newState(t, v7).Snapshot()
	saved := filepath.Join(dir, "v7.rkv")
	if err := statefile.Save(context.Background(), saved, s7, false); err != nil {
		t.Fatal(err)
	}
	if err := statefile.Save(context.Background(), saved, s7, false); err == nil {
		t.Error("Save replaced an existing file without force")
	}
	model := filepath.Join(dir, "model.rkv")
	src, err := format.Open(tiny + "tiny-rwkv-7v0-834K.pth")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := serialize.WriteFile(context.Background(), model, src, false, nil); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.pth")
	writePTH(t, short, stateTuned(t, v7.Info(), v7.Info().Layers-1, func(l, h, v, k int) float32 { return 1 }))
	long := filepath.Join(dir, "long.pth")
	writePTH(t, long, stateTuned(t, v7.Info(), v7.Info().Layers+1, func(l, h, v, k int) float32 { return 1 }))
	corrupt := filepath.Join(dir, "corrupt.rkv")
	h, err := serialize.ReadHeaderFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	last := h.Tensors[len(h.Tensors)-1]
	b, _ := os.ReadFile(saved)
	b[last.Offset+last.Length/2] ^= 1
	os.WriteFile(corrupt, b, 0o644)

	for _, c := range []struct {
		name, path string
		info       format.ModelInfo
		is         error
		says       string
	}{
		{"a v7 state for a v6 model", saved, v6.Info(), engine.ErrStateMismatch, "RWKV 7"},
		{"a model artifact", model, v7.Info(), statefile.ErrNotState, "model artifact"},
		{"a model checkpoint", tiny + "tiny-rwkv-7v0-834K.pth", v7.Info(), statefile.ErrNotState, "time_state"},
		{"a layer missing", short, v7.Info(), engine.ErrStateMismatch, "blocks.11.att.time_state"},
		{"a layer too many", long, v7.Info(), engine.ErrStateMismatch, "blocks.12.att.time_state"},
		{"a v7 time_state for a v6 model", short, v6.Info(), engine.ErrStateMismatch, "shape"},
		{"a corrupt artifact", corrupt, v7.Info(), serialize.ErrChecksum, "blocks.11.att.time_state"},
		{"no file", filepath.Join(dir, "none"), v7.Info(), os.ErrNotExist, "none"},
	} {
		_, err := statefile.Load(c.path, c.info)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), filepath.Base(c.path)) {
			t.Errorf("%s: %v; want %v, naming the file and %q", c.name, err, c.is, c.says)
		}
	}
}

func writePTH(t testing.TB, path string, src *format.Source) {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.WritePTH(&buf, src); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
