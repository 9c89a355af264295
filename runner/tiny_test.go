package runner

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/generate"
	_ "github.com/rwkvkit/rwkvkit/pth"
	_ "github.com/rwkvkit/rwkvkit/safetensors"
)

const tinyDir = "../fixtures/rwkv-tiny"

type tinyModel struct {
	Pth, St, Logits, Version string
	Layers                   int `json:"n_layer"`
	Embed                    int `json:"n_embd"`
	Vocab                    int
}

type tinyIndex struct {
	Tokens []int `json:"prompt_tokens"`
	Models []tinyModel
}

func readTinyIndex(t testing.TB) tinyIndex {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tinyDir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx tinyIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Models) != 5 || len(idx.Tokens) != 3 {
		t.Fatalf("index.json lists %d models and %d tokens", len(idx.Models), len(idx.Tokens))
	}
	return idx
}

// readLogits reads float32 little-endian rows of vocab values.
func readLogits(t testing.TB, path string, vocab int) [][]float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%(4*vocab) != 0 {
		t.Fatalf("%s: %d bytes is not rows of %d float32", path, len(b), vocab)
	}
	var rows [][]float32
	for len(b) > 0 {
		row := make([]float32, vocab)
		for i := range row {
			row[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		rows = append(rows, row)
		b = b[4*vocab:]
	}
	return rows
}

func loadFile(t testing.TB, path string) *Model {
	t.Helper()
	src, err := format.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m, err := Load(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		if a[i] != a[i] || b[i] != b[i] {
			return math.Inf(1)
		}
	}
	return d
}

// stepRows feeds tokens one Step at a time from a fresh state.
func stepRows(t testing.TB, m *Model, tokens []int) [][]float32 {
	t.Helper()
	s := m.newState()
	var rows [][]float32
	for _, tok := range tokens {
		l, err := m.Step(s, tok)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, l)
	}
	return rows
}

// forwardRows feeds tokens with one Forward call and splits its rows.
func forwardRows(t testing.TB, m *Model, tokens []int) [][]float32 {
	t.Helper()
	l, err := m.Forward(m.newState(), tokens, true)
	if err != nil {
		t.Fatal(err)
	}
	V := m.Info().Vocab
	var rows [][]float32
	for i := range tokens {
		rows = append(rows, l[i*V:(i+1)*V])
	}
	return rows
}

// The five real tiny models reproduce their reference logits, from the
// .pth (float32/bfloat16 weights, max |error| ≤ 1e-4) and from web-rwkv's
// float16 conversion (max |error| ≤ 1e-2, same argmax at every position),
// token by token and as one sequence; the two ways agree to 1e-4.
func TestTinyModels(t *testing.T) {
	idx := readTinyIndex(t)
	for _, tm := range idx.Models {
		ref := readLogits(t, filepath.Join(tinyDir, tm.Logits), tm.Vocab)
		if len(ref) != len(idx.Tokens) {
			t.Fatalf("%s: %d reference rows for %d tokens", tm.Logits, len(ref), len(idx.Tokens))
		}
		for _, file := range []struct {
			path      string
			tol       float64
			sameArgmx bool
		}{
			{tm.Pth, 1e-4, false},
			{tm.St, 1e-2, true},
		} {
			t.Run(filepath.Base(file.path), func(t *testing.T) {
				m := loadFile(t, filepath.Join(tinyDir, file.path))
				info := m.Info()
				if string(info.Version) != tm.Version && !(tm.Version == "5.1" && info.Version == format.V5_0) {
					t.Errorf("version %s, index says %s", info.Version, tm.Version)
				}
				if info.Layers != tm.Layers || info.Embed != tm.Embed || info.Vocab != tm.Vocab {
					t.Errorf("info %+v, index says %d layers, embedding %d, vocabulary %d", info, tm.Layers, tm.Embed, tm.Vocab)
				}
				step := stepRows(t, m, idx.Tokens)
				var greedy generate.Sampler // temperature 0: the most likely token
				fwd := forwardRows(t, m, idx.Tokens)
				var errStep, errFwd, errBoth float64
				for i := range ref {
					errStep = max(errStep, maxAbsDiff(step[i], ref[i]))
					errFwd = max(errFwd, maxAbsDiff(fwd[i], ref[i]))
					errBoth = max(errBoth, maxAbsDiff(step[i], fwd[i]))
					if file.sameArgmx {
						if a, b := greedy.Sample(step[i]), greedy.Sample(ref[i]); a != b {
							t.Errorf("position %d: argmax %d, reference %d", i, a, b)
						}
						if a, b := greedy.Sample(fwd[i]), greedy.Sample(ref[i]); a != b {
							t.Errorf("position %d: Forward argmax %d, reference %d", i, a, b)
						}
					}
				}
				t.Logf("max |error|: Step %.3g, Forward %.3g; Step vs Forward %.3g", errStep, errFwd, errBoth)
				if errStep > file.tol || errFwd > file.tol {
					t.Errorf("max |error| Step %.3g, Forward %.3g; want ≤ %g", errStep, errFwd, file.tol)
				}
				if errBoth > 1e-4 {
					t.Errorf("Step and Forward differ by %.3g; want ≤ 1e-4", errBoth)
				}
			})
		}
	}
}
