package gpuengine

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
	"github.com/rwkvkit/rwkvkit/internal/synth"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/runner"

	_ "github.com/rwkvkit/rwkvkit/pth"
	_ "github.com/rwkvkit/rwkvkit/safetensors"
	_ "github.com/rwkvkit/rwkvkit/serialize"
)

const tinyDir = "../fixtures/rwkv-tiny"

func openSource(t testing.TB, path string) *format.Source {
	t.Helper()
	src, err := format.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func loadGPU(t testing.TB, src *format.Source, opt *Options) *Engine {
	t.Helper()
	e, err := Load(context.Background(), gputest.Device(t), src, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func loadCPU(t testing.TB, src *format.Source) *runner.Model {
	t.Helper()
	m, err := runner.Load(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testTokens is a byte-level text long enough for several chunks.
var testTokens = func() []int {
	var out []int
	for _, b := range []byte("\"in the beginning, RWKV was a recurrent network\"") {
		out = append(out, int(b))
	}
	return out
}()

// cpuRows runs tokens through the CPU engine one sequence call and returns
// every position's logits.
func cpuRows(t testing.TB, m *runner.Model, tokens []int) []float32 {
	t.Helper()
	l, err := m.Forward(newState(t, m), tokens, true)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func argmax(v []float32) int {
	b := 0
	for i, x := range v {
		if x > v[b] {
			b = i
		}
	}
	return b
}

// compare checks GPU logits against CPU logits, row by row: max |Δ| within
// tol and the same top-1.
func compare(t testing.TB, what string, got, want []float32, vocab int, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", what, len(got), len(want))
	}
	var worst float64
	for r := 0; r < len(want)/vocab; r++ {
		g, w := got[r*vocab:(r+1)*vocab], want[r*vocab:(r+1)*vocab]
		for i := range w {
			d := math.Abs(float64(g[i]) - float64(w[i]))
			if d != d || math.IsInf(float64(g[i]), 0) {
				t.Fatalf("%s: row %d value %d is %v", what, r, i, g[i])
			}
			worst = max(worst, d)
		}
		if a, b := argmax(g), argmax(w); a != b {
			t.Errorf("%s: row %d: top-1 %d, CPU %d", what, r, a, b)
		}
	}
	if worst > tol {
		t.Errorf("%s: max |GPU − CPU| = %.3g, want ≤ %g", what, worst, tol)
	}
	t.Logf("%s: max |GPU − CPU| = %.3g over %d rows", what, worst, len(want)/vocab)
}

func newState(t testing.TB, e engine.Engine) engine.State {
	t.Helper()
	s, err := e.NewState()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runAll feeds tokens to e as one sequence and returns its logits.
func runAll(t testing.TB, e engine.Engine, s engine.State, tokens []int, out engine.Output) []float32 {
	t.Helper()
	b := []engine.Sequence{{Tokens: tokens, State: s, Output: out}}
	if err := e.Run(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b[0].Logits
}

// tinyModels are the tiny real models the GPU engine runs (web-rwkv's
// float16 conversions).
var tinyModels = []string{
	"tiny-rwkv-4v0-660K",
	"tiny-rwkv-5v1-730K",
	"tiny-rwkv-5v2-730K",
	"tiny-rwkv-6v0-1m",
	"tiny-rwkv-7v0-834K",
}

// weightKinds are the storage kinds every tiny model is tested in.
var weightKinds = []struct {
	name string
	kind format.DType // Invalid: the file's float16
}{
	{"F16", format.Invalid},
	{"Int8", format.Int8Block},
	{"NF4", format.NF4Block},
	{"SF4", format.SF4Block},
}

// quantized returns src with every quantizable matrix in kind (CPU
// quantizer, the same bytes as the GPU's), or src itself for Invalid.
func quantized(t testing.TB, src *format.Source, kind format.DType) *format.Source {
	t.Helper()
	if kind == format.Invalid {
		return src
	}
	info, err := format.Detect(src)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := quantize.NewPlan(info.Layers, quantize.Rule{Kind: kind, Layers: "all"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := quantize.Apply(context.Background(), src, plan, quantize.CPU{})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// testModel is a model the GPU engine is tested on.
type testModel struct {
	name string
	open func(t testing.TB) *format.Source
}

// wideV7 is an RWKV-7 shape wider than one workgroup's share of a row.
var wideV7 = synth.Config{Layers: 2, Embed: 576, Vocab: 256, HeadSize: 64, DecayLoRA: 32, ALoRA: 32, VLoRA: 32, GLoRA: 64}

const wideSeed = 28

// testModels are the tiny models, a synthetic v5.1 (gated, with one decay
// and bonus per head, which reach the engine as [H] vectors), which has no
// real checkpoint, and a synthetic RWKV-7 wider than the tiny ones: the CPU
// engine is the reference of the synthetic two. Their seeds give top-1
// logits at least 2e-3 above the second at every position in every weight
// kind.
func testModels() []testModel {
	var ms []testModel
	for _, name := range tinyModels {
		ms = append(ms, testModel{name, func(t testing.TB) *format.Source {
			return openSource(t, filepath.Join(tinyDir, "st", name+".st"))
		}})
	}
	return append(ms, testModel{"synthetic-5.1", func(t testing.TB) *format.Source {
		src, err := synth.RWKV5(synth.Config{Layers: 2, Embed: 64, Vocab: 256, HeadSize: 32}, format.V5_1, format.F16, 28)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}}, testModel{"synthetic-7-wide", func(t testing.TB) *format.Source {
		// Wider than a LayerNorm workgroup (256) and not a multiple of it,
		// so that rows are shared out among workgroups, the last one partly.
		src, err := synth.RWKV7(wideV7, format.F16, wideSeed)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}})
}

// Every test model in every weight kind gives the CPU engine's logits
// (within 1e-3, same top-1 at every position) for a prompt in one pass (the
// tiled matrix-matrix kernels), for the same prompt in chunks of 7 tokens
// fed by successive calls (the matrix-vector kernels over several tokens,
// the state carried between calls), and fed token by token. Several passes
// within one call are the batch tests' business.
func TestTinyModels(t *testing.T) {
	for _, tm := range testModels() {
		for _, wk := range weightKinds {
			t.Run(tm.name+"/"+wk.name, func(t *testing.T) {
				src := quantized(t, tm.open(t), wk.kind)
				cpu := loadCPU(t, src)
				V := cpu.Info().Vocab
				want := cpuRows(t, cpu, testTokens)

				e := loadGPU(t, src, &Options{Chunk: 64})
				if e.Info() != cpu.Info() {
					t.Fatalf("the GPU engine sees %+v, the CPU engine %+v", e.Info(), cpu.Info())
				}
				compare(t, "one pass", runAll(t, e, newState(t, e), testTokens, engine.OutputAll), want, V, 1e-3)
				s := newState(t, e)
				var chunks []float32
				for i := 0; i < len(testTokens); i += 7 {
					chunks = append(chunks, runAll(t, e, s, testTokens[i:min(i+7, len(testTokens))], engine.OutputAll)...)
				}
				compare(t, "chunks of 7", chunks, want, V, 1e-3)
				s = newState(t, e)
				var steps []float32
				const nSteps = 3
				for _, tok := range testTokens[:nSteps] {
					steps = append(steps, runAll(t, e, s, []int{tok}, engine.OutputLast)...)
				}
				compare(t, "token by token", steps, want[:nSteps*V], V, 1e-3)
			})
		}
	}
}

// Every tile of the matrix-matrix kernel, with the columns of dispatches of one
// product or of several split into parts or not, or their slices shared out among
// a few workgroups or many (a workgroup summing several whole tiles and parts of
// two, or parts of one tile; the second LoRA stages, 32 and 64 columns, in one
// dispatch), gives the CPU engine's logits, in every weight kind, on a model whose
// matrices end inside a tile in rows (160 and 320 rows: 128 + 32, 64 + 32 …), whose
// Int8 and NF4 blocks cross rows (160 columns), and on a prompt that ends inside
// the second or third tile of tokens (147 tokens).
func TestMatmatTiles(t *testing.T) {
	base, err := synth.RWKV7(synth.Config{Layers: 2, Embed: 160, Vocab: 320, HeadSize: 32, DecayLoRA: 32, ALoRA: 32, VLoRA: 32, GLoRA: 64}, format.F16, 5)
	if err != nil {
		t.Fatal(err)
	}
	var toks []int
	for len(toks) < 147 {
		toks = append(toks, testTokens...)
	}
	toks = toks[:147]
	type knobs struct{ split, jobs, stream, streams, tiles, min, one, tmLoRA int }
	saved := knobs{mmSplit, mmSplitJobs, mmStream, mmStreams, mmStreamTiles, mmStreamMin, mmStreamOne, timeMixLoRAMax}
	defer func() {
		mmSplit, mmSplitJobs, mmStream, mmStreams, mmStreamTiles, mmStreamMin, mmStreamOne, timeMixLoRAMax =
			saved.split, saved.jobs, saved.stream, saved.streams, saved.tiles, saved.min, saved.one, saved.tmLoRA
	}()
	for _, wk := range weightKinds {
		t.Run(wk.name, func(t *testing.T) {
			src := quantized(t, base, wk.kind)
			want := cpuRows(t, loadCPU(t, src), toks)
			for _, c := range []knobs{
				{1, 0, 0, 1, 0, 1, 0, saved.tmLoRA}, {4, 0, 0, 1, 0, 1, 0, saved.tmLoRA}, {16, 0, 0, 1, 0, 1, 0, saved.tmLoRA},
				{4, 1 << 30, 0, 1, 0, 1, 0, saved.tmLoRA}, {16, 1 << 30, 0, 1, 0, 1, 0, saved.tmLoRA},
				{4, 0, 1, 7, 1 << 30, 1, 0, 0}, {4, 0, 1, 5, 1 << 30, 1, 1, 0}, {4, 0, 2, 3, 1 << 30, 1, 0, 0}, {1, 0, 2, 40, 1 << 30, 1, 0, 0},
			} {
				mmSplit, mmSplitJobs, mmStream, mmStreams, mmStreamTiles, mmStreamMin, mmStreamOne, timeMixLoRAMax =
					c.split, c.jobs, c.stream, c.streams, c.tiles, c.min, c.one, c.tmLoRA
				e := loadGPU(t, src, &Options{Chunk: 256})
				for v := 0; v <= len(mmTiles); v++ {
					e.tile = v
					what := "tile chosen by size"
					if v > 0 {
						what = fmt.Sprintf("tile %d×%d", 8*mmTiles[v-1].tm, 8*mmTiles[v-1].tn)
					}
					what += fmt.Sprintf(", columns in up to %d parts (dispatches of several products too: %v)", mmSplit, mmSplitJobs > 0)
					if mmStream > 0 && v != 2 {
						which := map[int]string{1: "several products", 2: "every dispatch"}[mmStream]
						if mmStream == 1 && mmStreamOne > 0 {
							which = "several products and one of many slices"
						}
						what += fmt.Sprintf(", slices of %s shared among %d workgroups", which, mmStreams)
					}
					compare(t, what, runAll(t, e, newState(t, e), toks, engine.OutputAll), want, e.Info().Vocab, 1e-3)
				}
			}
		})
	}
}

// The RWKV-7 recurrence keeps a row of S in registers as up to 16 written-out
// quads, in groups of four: head sizes that are not a multiple of 16 up to
// 64 are refused before anything is loaded.
func TestSupportedHeadSizes(t *testing.T) {
	for _, c := range []struct {
		n  int
		ok bool
	}{{16, true}, {32, true}, {48, true}, {64, true}, {8, false}, {24, false}, {96, false}, {128, false}} {
		info := format.ModelInfo{Version: format.V7, Layers: 1, Embed: 384, Heads: 384 / c.n, HeadSize: c.n, Vocab: 256, FFN: 1536}
		err := Supported(info)
		if (err == nil) != c.ok {
			t.Errorf("head size %d: %v, want supported %v", c.n, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("head size %d", c.n)) {
			t.Errorf("head size %d: %q does not name it", c.n, err)
		}
	}
}

// Matrices stored in a type the arenas do not hold (a checkpoint's
// bfloat16, float32) are converted to float16 on their way to the GPU, as
// web-rwkv holds them, and vectors to float32: they give the logits of the
// CPU engine on the checkpoint with its matrices cast to float16
// (format.CastF16: the same rounding) and its vectors as they are.
func TestConvertedWeights(t *testing.T) {
	f32, err := synth.RWKV7(wideV7, format.F32, wideSeed)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		src  *format.Source
	}{
		{"bfloat16 .pth", openSource(t, filepath.Join(tinyDir, "tiny-rwkv-7v0-834K.pth"))},
		{"float32", f32},
	} {
		t.Run(c.name, func(t *testing.T) {
			if dt := c.src.Lookup(c.src.Tensors[len(c.src.Tensors)-1].Name).DType; dt == format.F16 {
				t.Fatalf("the source is already float16")
			}
			cpu := loadCPU(t, matricesF16(t, c.src))
			want := cpuRows(t, cpu, testTokens[:12])
			e := loadGPU(t, c.src, nil)
			compare(t, c.name, runAll(t, e, newState(t, e), testTokens[:12], engine.OutputAll), want, cpu.Info().Vocab, 1e-3)
		})
	}
}

// matricesF16 is src with its matrices (two dimensions above 1) cast to
// float16 and every other tensor as it is.
func matricesF16(t *testing.T, src *format.Source) *format.Source {
	f16, err := format.CastF16(src)
	if err != nil {
		t.Fatal(err)
	}
	out := src.Derive()
	for _, tn := range src.Tensors {
		wide := 0
		for _, d := range tn.Shape {
			if d > 1 {
				wide++
			}
		}
		if wide >= 2 {
			tn = f16.Lookup(tn.Name)
		}
		out.Tensors = append(out.Tensors, tn)
	}
	return out
}

// A dispatch of float16 products alone runs the matrix-vector kernel
// compiled for float16 (KIND 0), which needs fewer registers than the kernel
// of every kind; one of Int8 products alone, the kernel of every kind in the
// wide geometry (mvGeometry); any other, the kernel of every kind. A step's
// quantized products take matvec1, wide where they are Int8 alone or
// include 4-bit ones. (All give the CPU engine's logits: the tests of every
// weight kind above.)
func TestMatvecKernelByKind(t *testing.T) {
	for _, c := range []struct {
		name string
		kind format.DType
	}{{"F16", format.Invalid}, {"Int8", format.Int8Block}, {"NF4", format.NF4Block}} {
		e := loadGPU(t, quantized(t, openSource(t, tinyV7), c.kind), nil)
		matvec := func(kind int, wide bool) *gpu.Kernel {
			lanes, rows := e.mvGeometry(wide)
			return e.kernels["linear.wgsl.matvec"+fmt.Sprint(map[string]int{"KIND": kind, "LANES": lanes, "MV_ROWS": rows})]
		}
		matvec1 := func(wide bool) *gpu.Kernel {
			lanes, rows := e.mvGeometry(wide)
			return e.kernels["linear.wgsl+matvec1.wgsl.matvec1"+fmt.Sprint(map[string]int{"KIND": anyKind, "LANES": lanes, "MV_ROWS": rows})]
		}
		f16, every, wide := matvec(kindF16, false), matvec(anyKind, false), matvec(anyKind, true)
		one, oneWide := matvec1(false), matvec1(true)
		what := map[*gpu.Kernel]string{f16: "float16 alone", every: "every kind", wide: "every kind, wide", one: "matvec1", oneWide: "matvec1, wide"}
		products, ones := map[*gpu.Kernel]bool{}, map[*gpu.Kernel]bool{}
		for key, k := range e.kernels {
			products[k] = products[k] || strings.HasPrefix(key, "linear.wgsl.matvec")
			ones[k] = ones[k] || strings.HasPrefix(key, "linear.wgsl+matvec1.wgsl.matvec1")
		}
		counts := map[*gpu.Kernel]int{}
		for _, o := range e.prog {
			k := o.kernels[0]
			if !products[k] {
				continue // not a product
			}
			allF16, allInt8, fourBits := true, true, false
			for i := range int(binary.LittleEndian.Uint32(o.params)) {
				kind := binary.LittleEndian.Uint32(o.params[4*(4+16*i+2):])
				allF16 = allF16 && kind == kindF16
				allInt8 = allInt8 && kind == kindInt8
				fourBits = fourBits || kind == kindNF4 || kind == kindSF4
			}
			want, want1 := every, one
			switch {
			case allF16:
				want, want1 = f16, nil
			case allInt8:
				want, want1 = wide, oneWide
			case fourBits:
				want1 = oneWide
			}
			if k != want {
				t.Errorf("%s: %s runs the matrix-vector kernel of %s, want %s's", c.name, o.name, what[k], what[want])
			}
			var k1 *gpu.Kernel
			if at := 1 + len(mmTiles); at < len(o.kernels) && ones[o.kernels[at]] {
				k1 = o.kernels[at]
			}
			if k1 != want1 {
				t.Errorf("%s: %s steps run %s, want %s", c.name, o.name, what[k1], what[want1])
			}
			counts[k]++
			if k1 != nil {
				counts[k1]++
			}
		}
		t.Logf("%s: %d dispatches of float16 alone, %d of every kind, %d wide; matvec1 %d, wide %d", c.name, counts[f16], counts[every], counts[wide], counts[one], counts[oneWide])
		if counts[f16] == 0 || (c.kind == format.Int8Block && counts[wide] == 0) || (c.kind == format.NF4Block && (counts[every] == 0 || counts[oneWide] == 0)) {
			t.Errorf("%s: %d dispatches of float16 alone, %d of every kind, %d wide; matvec1 %d, wide %d", c.name, counts[f16], counts[every], counts[wide], counts[one], counts[oneWide])
		}
	}
}
