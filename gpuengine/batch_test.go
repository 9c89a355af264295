package gpuengine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
	"github.com/rwkvkit/rwkvkit/quantize"
	"github.com/rwkvkit/rwkvkit/serialize"
)

const tinyV7 = tinyDir + "/st/tiny-rwkv-7v0-834K.st"

// A batch of sequences of different lengths — one of a single token, one
// longer than a pass, some wanting every position, one none — gives each
// sequence what it gives alone, in passes that mix them (to float32
// rounding: a pass of long segments takes other kernels than a step), in
// every version.
func TestBatchEqualsAlone(t *testing.T) {
	for _, tm := range testModels() {
		t.Run(tm.name, func(t *testing.T) {
			e := loadGPU(t, tm.open(t), &Options{Chunk: 16})
			V := e.Info().Vocab
			seqs := []struct {
				n   int
				out engine.Output
			}{{1, engine.OutputLast}, {40, engine.OutputAll}, {5, engine.OutputAll}, {9, engine.OutputNone}, {23, engine.OutputLast}}
			batch := make([]engine.Sequence, len(seqs))
			for i, s := range seqs {
				toks := testTokens[i : i+s.n]
				batch[i] = engine.Sequence{Tokens: toks, State: newState(t, e), Output: s.out}
			}
			if err := e.Run(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			for i, s := range seqs {
				alone := newState(t, e)
				want := runAll(t, e, alone, batch[i].Tokens, s.out)
				compare(t, fmt.Sprintf("sequence %d (%d tokens, output %v) batched vs alone", i, s.n, s.out), batch[i].Logits, want, V, 1e-5)
				// The states agree too: the next token gives the same logits.
				next := runAll(t, e, batch[i].State, []int{10}, engine.OutputLast)
				compare(t, fmt.Sprintf("sequence %d continued", i), next, runAll(t, e, alone, []int{10}, engine.OutputLast), V, 1e-5)
			}
		})
	}
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// A state read back from the GPU and continued on the CPU gives the logits
// the GPU gives; a CPU state restored on the GPU continues as on the CPU,
// in every version (v4's aa, bb and pp; v5–v7's matrices, each in its own
// orientation).
func TestStateMovesBetweenEngines(t *testing.T) {
	for _, tm := range testModels() {
		t.Run(tm.name, func(t *testing.T) {
			src := tm.open(t)
			e := loadGPU(t, src, &Options{Chunk: 16})
			cpu := loadCPU(t, src)
			V := e.Info().Vocab
			prompt, next := testTokens[:20], testTokens[20:24]

			s := newState(t, e)
			runAll(t, e, s, prompt, engine.OutputNone)
			snap, err := s.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			cs := newState(t, cpu)
			if err := cs.Restore(snap); err != nil {
				t.Fatal(err)
			}
			want, err := cpu.Forward(cs, next, true)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "GPU state continued on the CPU", runAll(t, e, s, next, engine.OutputAll), want, V, 1e-3)

			// The CPU's state after the same prompt, restored on the GPU.
			c2 := newState(t, cpu)
			if _, err := cpu.Forward(c2, prompt, false); err != nil {
				t.Fatal(err)
			}
			cs2, err := c2.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			g := newState(t, e)
			if err := g.Restore(cs2); err != nil {
				t.Fatal(err)
			}
			compare(t, "CPU state continued on the GPU", runAll(t, e, g, next, engine.OutputAll), want, V, 1e-3)

			// A snapshot of another shape is refused.
			bad := engine.NewSnapshot(format.ModelInfo{Version: format.V7, Layers: 2, Embed: 64, Heads: 1, HeadSize: 64})
			if err := g.Restore(bad); !errors.Is(err, engine.ErrStateMismatch) {
				t.Errorf("restoring a snapshot of another model: %v, want ErrStateMismatch", err)
			}
			// Snapshot of a fresh state is the initial state.
			fresh, err := newState(t, e).Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if !equalFloats(fresh.Data, engine.NewSnapshot(e.Info()).Data) {
				t.Error("a new state is not the initial state")
			}
		})
	}
}

// Quantizing at load (on the GPU) gives the logits of the .rkv that the
// quantizer writes, bit for bit.
func TestQuantizeAtLoadEqualsArtifact(t *testing.T) {
	for _, kind := range []format.DType{format.Int8Block, format.NF4Block, format.SF4Block} {
		src := openSource(t, tinyV7)
		info, _ := format.Detect(src)
		plan, err := quantize.NewPlan(info.Layers, quantize.Rule{Kind: kind, Layers: "0-7"})
		if err != nil {
			t.Fatal(err)
		}
		q, err := quantize.Apply(context.Background(), src, plan, quantize.CPU{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := serialize.Write(&buf, q, nil); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "tiny.rkv")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		fromFile := loadGPU(t, openSource(t, path), nil)
		atLoad := loadGPU(t, openSource(t, tinyV7), &Options{Plan: plan})
		a := runAll(t, fromFile, newState(t, fromFile), testTokens[:12], engine.OutputAll)
		b := runAll(t, atLoad, newState(t, atLoad), testTokens[:12], engine.OutputAll)
		if !equalFloats(a, b) {
			t.Errorf("%v: quantized at load differs from the .rkv", kind)
		}
		f16 := loadGPU(t, openSource(t, tinyV7), nil)
		if equalFloats(a, runAll(t, f16, newState(t, f16), testTokens[:12], engine.OutputAll)) {
			t.Errorf("%v: the quantized model gives the float16 logits", kind)
		}
	}
}

// A model that does not fit is refused, saying how much it needs, before
// anything is uploaded.
func TestTooLarge(t *testing.T) {
	d := gputest.Device(t)
	src := openSource(t, tinyV7)
	_, err := Load(context.Background(), d, src, &Options{MaxMemory: 1 << 20})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("1 MiB limit: %v, want ErrTooLarge", err)
	}
	t.Log(err)
	// A pass whose activations exceed a binding: more tokens than a
	// binding holds vectors of the model's width.
	chunk := int(d.MaxBinding()/uint64(4*src.Info.Embed)) + 1
	_, err = Load(context.Background(), d, src, &Options{Chunk: chunk})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge chunk: %v, want ErrTooLarge", err)
	}
	t.Log(err)
}

// Weights split over many small arenas, and the embedding, the head and
// the FFN matrices cut into several pieces each, compute the same logits.
func TestSmallArenas(t *testing.T) {
	for _, wk := range weightKinds {
		src := quantized(t, openSource(t, tinyV7), wk.kind)
		whole := loadGPU(t, src, &Options{Chunk: 32})
		split := loadGPU(t, src, &Options{Chunk: 32, MaxBinding: 20 << 10})
		if len(split.arenas) < 4*len(whole.arenas) || len(split.mats["emb.weight"].pieces) < 2 || len(split.mats["blocks.0.ffn.key.weight"].pieces) < 2 {
			t.Fatalf("%s: %d arenas (whole: %d), embedding in %d pieces", wk.name, len(split.arenas), len(whole.arenas), len(split.mats["emb.weight"].pieces))
		}
		// One state per page: the batch spans three pages.
		batch := func(e *Engine, n int) []engine.Sequence {
			b := make([]engine.Sequence, 3)
			for i := range b {
				b[i] = engine.Sequence{Tokens: testTokens[i : i+n], State: newState(t, e), Output: engine.OutputAll}
			}
			if err := e.Run(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			return b
		}
		// The matrix-vector and the matrix-matrix kernels. Two tokens a
		// segment are short segments, whose time mix makes the second LoRA
		// stages where the matrices are whole (not in split); and a
		// matrix-matrix dispatch of one product splits its columns among
		// workgroups where it is alone (in split, not in whole): other sums,
		// the same to float32 rounding.
		for _, c := range []struct {
			n   int
			tol float64
		}{{2, 1e-5}, {20, 1e-5}} {
			a, b := batch(whole, c.n), batch(split, c.n)
			for i := range a {
				if !equalFloats(a[i].Logits, b[i].Logits) {
					compare(t, fmt.Sprintf("%s: sequence %d split vs whole", wk.name, i), b[i].Logits, a[i].Logits, whole.Info().Vocab, c.tol)
				}
			}
		}
		if len(split.states) < 3 {
			t.Errorf("%d pages of states, want at least 3", len(split.states))
		}
	}
}

// The profiles time every op of a pass (with timestamps where the adapter
// has them, otherwise by waiting for each).
func TestProfile(t *testing.T) {
	e := loadGPU(t, openSource(t, tinyV7), &Options{Chunk: 16})
	s := newState(t, e).(*State)
	// A run first, which leaves its download buffers mapped.
	if err := e.Run(context.Background(), []engine.Sequence{{Tokens: testTokens[:5], State: newState(t, e), Output: engine.OutputAll}}); err != nil {
		t.Fatal(err)
	}
	b := []engine.Sequence{{Tokens: testTokens[:3], State: s, Output: engine.OutputLast}}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.d.Lock()
	defer e.d.Unlock()
	sh, _ := e.planPass(b, []*State{s}, make([]int, 1), nil)
	p, whole, err := e.profileGPU(sh)
	if errors.Is(err, gpu.ErrNoTimestamps) {
		t.Logf("%v: timing by waiting", err)
		p, err = e.profile(sh)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"embed", "ln1", "att.products", "att.time_mix", "att.output", "ln2", "ffn.key", "ffn.value", "ln_out", "head"} {
		found := false
		for k := range p {
			found = found || k == name || strings.HasPrefix(k, name+"/")
		}
		if !found {
			t.Errorf("no time for %s in %v", name, p)
		}
	}
	t.Logf("%v (whole %v)", p, whole)
}

// cancelAfter is a context cancelled after its first n checks.
type cancelAfter struct {
	context.Context
	n int
}

func (c *cancelAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

// A run cancelled before its first pass or between passes (logits of
// passes still being read back) returns the context's error, and the
// engine stays usable.
func TestCancel(t *testing.T) {
	e := loadGPU(t, openSource(t, tinyV7), &Options{Chunk: 4})
	for _, n := range []int{0, 1, 2, 3} {
		s := newState(t, e)
		b := []engine.Sequence{{Tokens: testTokens[:20], State: s, Output: engine.OutputAll}}
		if err := e.Run(&cancelAfter{context.Background(), n}, b); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled after %d checks: %v", n, err)
		}
	}
	got := runAll(t, e, newState(t, e), testTokens[:6], engine.OutputAll)
	want := runAll(t, e, newState(t, e), testTokens[:6], engine.OutputAll)
	if !equalFloats(got, want) {
		t.Error("runs after a cancelled one differ")
	}
}

// Output rows beyond what the GPU holds at once go to the host in chunks,
// within a pass and across passes: one sequence wanting every position
// (45 rows over passes of 32 tokens, chunks of 6) and more sequences
// wanting their last position than a chunk holds (20, of 1 to 3 tokens)
// get the CPU engine's logits; and so do passes whose last chunk goes
// through the head in two halves (chunks of 32 rows or of 6, halves from 4),
// and chunks that take three download buffers in turn. Then a run with no
// output rows, while the download buffers are still mapped from the first,
// and one more row. Both ways to the host: the head writing the download
// buffers, and a copy.
func TestLogitRowsInChunks(t *testing.T) {
	for _, c := range []struct {
		rows, half, downs int
	}{{6, halfChunkRows, 2}, {0, 4, 2}, {6, 4, 2}, {6, 4, 3}} {
		for _, direct := range []bool{true, false} {
			for _, tm := range testModels() {
				t.Run(fmt.Sprintf("%s/direct=%v/rows=%d/half=%d/downs=%d", tm.name, direct, c.rows, c.half, c.downs), func(t *testing.T) {
					defer func(d bool, h, n int) { directLogits, halfChunkRows, downloadBuffers = d, h, n }(directLogits, halfChunkRows, downloadBuffers)
					directLogits, halfChunkRows, downloadBuffers = direct, c.half, c.downs
					testLogitRowsInChunks(t, tm, c.rows)
				})
			}
		}
	}
}

// The chunks of a pass: whole ones, the last in halves from halfChunkRows.
func TestChunks(t *testing.T) {
	defer func(h int) { halfChunkRows = h }(halfChunkRows)
	halfChunkRows = 256
	e := &Engine{rcap: 512}
	for _, c := range []struct {
		rows int
		want []int
	}{
		{0, []int{0}},
		{1, []int{1}},
		{255, []int{255}},
		{256, []int{128, 128}},
		{511, []int{256, 255}},
		{512, []int{256, 256}},
		{600, []int{512, 88}},
		{2048, []int{512, 512, 512, 256, 256}},
		{2047, []int{512, 512, 512, 256, 255}},
	} {
		if got := e.chunks(c.rows); !slices.Equal(got, c.want) {
			t.Errorf("chunks(%d) = %v, want %v", c.rows, got, c.want)
		}
	}
}

func testLogitRowsInChunks(t *testing.T, tm testModel, rows int) {
	src := tm.open(t)
	cpu := loadCPU(t, src)
	e := loadGPU(t, src, &Options{Chunk: 32, LogitRows: rows})
	if rows == 0 && !slices.Equal(e.chunks(32), []int{16, 16}) {
		t.Fatalf("a pass of 32 rows goes through the head in chunks of %v, not 16 and 16", e.chunks(32))
	}
	if want := directLogits && e.d.StorageDownloads(); e.direct != want {
		t.Fatalf("direct logits %v, want %v", e.direct, want)
	}
	V := e.Info().Vocab
	batch := []engine.Sequence{{Tokens: testTokens[:45], State: newState(t, e), Output: engine.OutputAll}}
	for i := range 20 {
		batch = append(batch, engine.Sequence{Tokens: testTokens[i : i+1+i%3], State: newState(t, e), Output: engine.OutputLast})
	}
	if err := e.Run(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	compare(t, "every position", batch[0].Logits, cpuRows(t, cpu, testTokens[:45]), V, 1e-3)
	for i, sq := range batch[1:] {
		want := cpuRows(t, cpu, sq.Tokens)
		compare(t, fmt.Sprintf("sequence %d's last position", i+1), sq.Logits, want[len(want)-V:], V, 1e-3)
	}
	s := batch[0].State
	if err := e.Run(context.Background(), []engine.Sequence{{Tokens: testTokens[45:50], State: s, Output: engine.OutputNone}}); err != nil {
		t.Fatal(err)
	}
	sq := []engine.Sequence{{Tokens: testTokens[50:51], State: s, Output: engine.OutputLast}}
	if err := e.Run(context.Background(), sq); err != nil {
		t.Fatal(err)
	}
	want := cpuRows(t, cpu, testTokens[:51])
	compare(t, "after a run without rows", sq[0].Logits, want[len(want)-V:], V, 1e-3)
}

// The GPU engine refuses the batches the CPU engine refuses, in the same
// words after its name, and leaves the states it was given as they were:
// a sequence without tokens, a token outside the vocabulary, an unknown
// output; and, of its own, a state used twice or made by another engine.
func TestRejectsBadBatches(t *testing.T) {
	src := openSource(t, tinyV7)
	g, c := loadGPU(t, src, nil), loadCPU(t, src)
	V := g.Info().Vocab
	gs, cs := newState(t, g), newState(t, c)
	if err := g.Run(context.Background(), []engine.Sequence{{Tokens: testTokens[:3], State: gs}}); err != nil {
		t.Fatal(err)
	}
	before, err := gs.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		name     string
		gpu, cpu []engine.Sequence // cpu nil: the GPU engine's case alone
		is       error
	}{
		{"no tokens", []engine.Sequence{{Tokens: []int{1}, State: gs}, {State: newState(t, g)}}, []engine.Sequence{{Tokens: []int{1}, State: cs}, {State: newState(t, c)}}, nil},
		{"token outside the vocabulary", []engine.Sequence{{Tokens: []int{1, V}, State: gs}}, []engine.Sequence{{Tokens: []int{1, V}, State: cs}}, engine.ErrToken},
		{"unknown output", []engine.Sequence{{Tokens: []int{1}, State: gs, Output: 7}}, []engine.Sequence{{Tokens: []int{1}, State: cs, Output: 7}}, nil},
		{"a state twice", []engine.Sequence{{Tokens: []int{1}, State: gs}, {Tokens: []int{2}, State: gs}}, nil, engine.ErrStateMismatch},
		{"the CPU engine's state", []engine.Sequence{{Tokens: []int{1}, State: cs}}, nil, engine.ErrStateMismatch},
	} {
		gerr := g.Run(context.Background(), b.gpu)
		if gerr == nil || (b.is != nil && !errors.Is(gerr, b.is)) {
			t.Errorf("%s: %v", b.name, gerr)
			continue
		}
		if b.cpu != nil {
			cerr := c.Run(context.Background(), b.cpu)
			if cerr == nil || strings.TrimPrefix(gerr.Error(), "gpuengine: ") != strings.TrimPrefix(cerr.Error(), "runner: ") {
				t.Errorf("%s: GPU %q, CPU %q", b.name, gerr, cerr)
			}
		}
		after, err := gs.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(before.Data, after.Data) {
			t.Errorf("%s: a refused batch changed a state", b.name)
		}
	}
}
