package runner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/hostile"
	"github.com/rwkvkit/rwkvkit/serialize"
)

func openTiny(t *testing.T, name string) *format.Source {
	t.Helper()
	src, err := format.Open(filepath.Join(tinyDir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// edited returns src with f applied to its tensor list.
func edited(src *format.Source, f func([]*format.Tensor) []*format.Tensor) *format.Source {
	return &format.Source{Format: src.Format, Metadata: src.Metadata, Tensors: f(slices.Clone(src.Tensors))}
}

func TestLoadErrorsNameTheTensor(t *testing.T) {
	src := openTiny(t, "tiny-rwkv-7v0-834K.pth")
	const victim = "blocks.3.att.key.weight"
	missing := edited(src, func(ts []*format.Tensor) []*format.Tensor {
		return slices.DeleteFunc(ts, func(t *format.Tensor) bool { return t.Name == victim })
	})
	if _, err := Load(context.Background(), missing); !errors.Is(err, ErrMissingTensor) || !strings.Contains(err.Error(), victim) {
		t.Errorf("missing tensor: %v", err)
	}
	reshaped := edited(src, func(ts []*format.Tensor) []*format.Tensor {
		for i, x := range ts {
			if x.Name == victim {
				n, _ := format.NewTensor(x.Name, x.DType, []int64{32, 128}, x.Open)
				ts[i] = n
			}
		}
		return ts
	})
	if _, err := Load(context.Background(), reshaped); !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), victim) {
		t.Errorf("ill-shaped tensor: %v", err)
	}
	const vec = "blocks.2.att.k_k"
	short := edited(src, func(ts []*format.Tensor) []*format.Tensor {
		for i, x := range ts {
			if x.Name == vec {
				n, _ := format.NewTensor(x.Name, x.DType, []int64{1, 1, 32}, x.Open)
				ts[i] = n
			}
		}
		return ts
	})
	if _, err := Load(context.Background(), short); !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), vec) {
		t.Errorf("short vector: %v", err)
	}
	if _, err := Load(context.Background(), &format.Source{}); !errors.Is(err, format.ErrNotModel) {
		t.Errorf("empty source: %v", err)
	}
}

func TestForwardRejectsBadTokens(t *testing.T) {
	m := loadFile(t, filepath.Join(tinyDir, "tiny-rwkv-4v0-660K.pth"))
	for _, toks := range [][]int{{256}, {1, -1}, nil} {
		if _, err := m.Forward(m.newState(), toks, false); err == nil {
			t.Errorf("Forward(%v) succeeded", toks)
		}
	}
	if _, err := m.Step(m.newState(), 300); !errors.Is(err, ErrToken) {
		t.Errorf("Step(300): %v, want ErrToken", err)
	}
}

// The gated v5 with one decay per head (ChatRWKV's "5.1") computes what v5.2
// computes with that decay and bonus repeated over each head's channels,
// which is what web-rwkv's converter makes of it. Built from the tiny v5.2
// model by keeping each head's first decay and bonus.
func TestV51IsV52WithRepeatedDecay(t *testing.T) {
	src := openTiny(t, "tiny-rwkv-5v2-730K.pth")
	const H, N = 8, 8
	perHead := func(x *format.Tensor, repeat bool) *format.Tensor {
		v, err := x.Float32()
		if err != nil {
			t.Fatal(err)
		}
		var out []float32
		for h := range H {
			if repeat {
				for range N {
					out = append(out, v[h*N])
				}
			} else {
				out = append(out, v[h*N])
			}
		}
		shape := []int64{H}
		if repeat {
			shape = []int64{H, N}
		}
		return f32Tensor(t, x.Name, shape, out)
	}
	build := func(v51 bool) *Model {
		s := edited(src, func(ts []*format.Tensor) []*format.Tensor {
			for i, x := range ts {
				switch {
				case strings.HasSuffix(x.Name, ".time_decay"):
					ts[i] = perHead(x, !v51)
				case strings.HasSuffix(x.Name, ".time_faaaa"):
					ts[i] = perHead(x, !v51)
					if v51 {
						ts[i].Name = strings.Replace(x.Name, "time_faaaa", "time_first", 1)
					}
				}
			}
			return ts
		})
		m, err := Load(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m51, m52 := build(true), build(false)
	if v := m51.Info().Version; v != format.V5_1 {
		t.Fatalf("detected %s, want 5.1", v)
	}
	toks := []int{34, 105, 110}
	a, _ := m51.Forward(m51.newState(), toks, true)
	b, _ := m52.Forward(m52.newState(), toks, true)
	if !slices.Equal(a, b) {
		t.Errorf("v5.1 and repeated v5.2 differ by %g", maxAbsDiff(a, b))
	}
	orig := loadFile(t, filepath.Join(tinyDir, "tiny-rwkv-5v2-730K.pth"))
	c, _ := orig.Forward(orig.newState(), toks, true)
	if maxAbsDiff(a, c) < 1e-3 {
		t.Error("per-head decay changed nothing: the test does not test")
	}
}

// A corrupt artifact's error names the file and the tensor once, says what
// is wrong, and can be taken apart with errors.As and errors.Is.
func TestCorruptArtifactError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.rkv")
	src := openTiny(t, "tiny-rwkv-7v0-834K.pth")
	if err := serialize.WriteFile(context.Background(), path, src, false, nil); err != nil {
		t.Fatal(err)
	}
	const victim = "blocks.4.att.key.weight"
	payload, recorded, err := hostile.CorruptArtifact(path, victim)
	if err != nil {
		t.Fatal(err)
	}
	corrupt, err := format.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer corrupt.Close()
	_, err = Load(context.Background(), corrupt)
	want := fmt.Sprintf("runner: %s: tensor %q: rkv: checksum mismatch: payload xxhash64 %016x, index says %016x",
		path, victim, xxhash.Sum64(payload), recorded)
	if err == nil || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
	var te *format.TensorError
	if !errors.As(err, &te) || te.File != path || te.Tensor != victim || !errors.Is(err, serialize.ErrChecksum) {
		t.Errorf("errors.As: %+v; errors.Is(ErrChecksum) = %v", te, errors.Is(err, serialize.ErrChecksum))
	}
}
