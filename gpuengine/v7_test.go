package gpuengine

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

// loraDispatches counts the layers whose second LoRA stages a pass of shape
// s multiplies in dispatches of their own.
func loraDispatches(e *Engine, s shape) int {
	layers := map[string]bool{}
	for _, o := range e.prog {
		if p, ok := strings.CutSuffix(o.name, "att.lora"); ok {
			if _, x, y := o.grid(s); x > 0 && y > 0 {
				layers[p] = true
			}
		}
	}
	return len(layers)
}

// The time mix of short segments, up to timeMixLoRAMax of them, makes the
// second LoRA stages of every RWKV-7 layer itself, the planner having
// placed their matrices with the layer's vectors; prompts and larger
// batches keep the separate products. Arenas that cut
// the matrices into pieces keep them for every pass (TestSmallArenas checks
// that both give the same logits).
func TestTimeMixLoRA(t *testing.T) {
	wide, err := synth.RWKV7(wideV7, format.F16, wideSeed)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		src     *format.Source
		binding int64
	}{
		{"tiny", openSource(t, tinyV7), 0},
		{"synthetic-7-wide", wide, 0},
		// Arenas of about a layer: they fill up in the middle of layers.
		{"synthetic-7-wide, small arenas", wide, 4 << 20},
	} {
		e := loadGPU(t, c.src, &Options{Chunk: 32, MaxBinding: c.binding})
		t.Logf("%s: %d arenas", c.name, len(e.arenas))
		L := e.Info().Layers
		S := timeMixLoRAMax
		for _, p := range []struct {
			what string
			s    shape
			want int
		}{
			{"a step", shape{T: 1, S: 1, R: 1}, 0},
			{"a batch of short segments", shape{T: 2 * S, S: S, R: S}, 0},
			{"a batch of more segments", shape{T: S + 1, S: S + 1, R: S + 1}, L},
			{"a prompt", shape{T: 32, S: 1, R: 1}, L},
		} {
			if n := loraDispatches(e, p.s); n != p.want {
				t.Errorf("%s: LoRA products dispatched in %d layers of %s, want %d", c.name, n, p.what, p.want)
			}
		}
	}
	split := loadGPU(t, openSource(t, tinyV7), &Options{Chunk: 32, MaxBinding: 20 << 10})
	if n, L := loraDispatches(split, shape{T: 1, S: 1, R: 1}), split.Info().Layers; n != L {
		t.Errorf("small arenas: LoRA products dispatched in %d layers of a step, want all %d", n, L)
	}
}

// Head sizes below 64 (the kernels write out S's quads, those past the
// head size removed) give the CPU engine's logits, token by token and in
// one pass.
func TestV7HeadSizes(t *testing.T) {
	for _, n := range []int{16, 32, 48} {
		cfg := synth.Config{Layers: 2, Embed: 96, Vocab: 256, HeadSize: n, DecayLoRA: 32, ALoRA: 32, VLoRA: 32, GLoRA: 64}
		src, err := synth.RWKV7(cfg, format.F16, 5)
		if err != nil {
			t.Fatal(err)
		}
		cpu := loadCPU(t, src)
		V := cpu.Info().Vocab
		toks := testTokens[:8]
		want := cpuRows(t, cpu, toks)
		e := loadGPU(t, src, &Options{Chunk: 32})
		compare(t, fmt.Sprintf("head size %d, one pass", n), runAll(t, e, newState(t, e), toks, engine.OutputAll), want, V, 1e-3)
		s := newState(t, e)
		var steps []float32
		for _, tok := range toks {
			steps = append(steps, runAll(t, e, s, []int{tok}, engine.OutputLast)...)
		}
		compare(t, fmt.Sprintf("head size %d, token by token", n), steps, want, V, 1e-3)
	}
}

// plannedSpans returns the shape of the first pass of batch as the engine
// plans it (the spans of its recurrence in K).
func plannedSpans(t *testing.T, e *Engine, batch []engine.Sequence) shape {
	t.Helper()
	states := make([]*State, len(batch))
	for i, sq := range batch {
		states[i] = sq.State.(*State)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	sh, _ := e.planPass(batch, states, make([]int, len(batch)), nil)
	return sh
}

// A prompt's recurrence cut into spans of any length (wgsl/recur7.wgsl,
// wgsl/carry7.wgsl: lengths that divide the segment or not, spans of fewer
// tokens than a block, every head size) gives the CPU engine's logits at
// every position and leaves its state: the next pass, which starts from
// it, does too. So does a batch whose segments have one span and several,
// each segment against the CPU engine alone; and spans off (0).
func TestRecurrenceSpans(t *testing.T) {
	defer func(n, w int) { spanTokens, spanWork = n, w }(spanTokens, spanWork)
	work := spanWork
	sources := []struct {
		name string
		src  *format.Source
	}{{"tiny", openSource(t, tinyV7)}}
	for _, n := range []int{16, 32, 48} {
		cfg := synth.Config{Layers: 2, Embed: 96, Vocab: 256, HeadSize: n, DecayLoRA: 32, ALoRA: 32, VLoRA: 32, GLoRA: 64}
		src, err := synth.RWKV7(cfg, format.F16, 5)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, struct {
			name string
			src  *format.Source
		}{fmt.Sprintf("head size %d", n), src})
	}
	lens := []int{40, 3, 25} // a batch's segments
	for _, m := range sources {
		cpu := loadCPU(t, m.src)
		V := cpu.Info().Vocab
		want := cpuRows(t, cpu, testTokens)
		alone := make([][]float32, len(lens))
		for i, n := range lens {
			alone[i] = cpuRows(t, cpu, testTokens[i:i+n])
		}
		// work: the most spans × heads as a multiple of the heads (0: the
		// default, which none of these passes reaches); prompt and batch:
		// the span lengths that then cut the first pass of 40 tokens and
		// the batch (0: one span a segment).
		for _, c := range []struct{ L, work, prompt, batch int }{
			{3, 0, 3, 3}, {5, 0, 5, 5}, {8, 0, 8, 8}, {16, 0, 16, 16}, {0, 0, 0, 0},
			{3, 4, 12, 0},  // 14 spans of 3, 7 of 6, 4 of 12; the batch one a segment
			{5, 12, 5, 10}, // the prompt 8 spans; the batch 8 + 1 + 5 of 5, 4 + 1 + 3 of 10
		} {
			spanTokens = c.L
			e := loadGPU(t, m.src, &Options{Chunk: 128})
			spanWork = c.work * e.info.Heads
			if c.work == 0 {
				spanWork = work
			}
			L := c.batch
			what := fmt.Sprintf("%s, spans of %d (at most %d × heads)", m.name, c.L, c.work)
			s := newState(t, e)
			first := []engine.Sequence{{Tokens: testTokens[:40], State: s, Output: engine.OutputAll}}
			if sh := plannedSpans(t, e, first); (sh.K > sh.S) != (c.prompt > 0) || c.prompt > 0 && sh.K != ceilDiv(40, c.prompt) {
				t.Fatalf("%s: a pass of 40 tokens has %d spans", what, sh.K)
			}
			got := runAll(t, e, s, testTokens[:40], engine.OutputAll)
			got = append(got, runAll(t, e, s, testTokens[40:], engine.OutputAll)...)
			compare(t, what+", a prompt in two passes", got, want, V, 1e-3)

			batch := make([]engine.Sequence, len(lens))
			for i, n := range lens {
				batch[i] = engine.Sequence{Tokens: testTokens[i : i+n], State: newState(t, e), Output: engine.OutputAll}
			}
			if sh := plannedSpans(t, e, batch); L > 0 && sh.K != 3+ceilDiv(40, L)+ceilDiv(25, L)-2+(ceilDiv(3, L)-1) || L == 0 && sh.K != 3 {
				t.Fatalf("%s: a batch of %v tokens has %d spans", what, lens, sh.K)
			}
			if err := e.Run(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			for i, n := range lens {
				compare(t, fmt.Sprintf("%s, batched segment of %d tokens", what, n), batch[i].Logits, alone[i], V, 1e-3)
			}
		}
	}
}
