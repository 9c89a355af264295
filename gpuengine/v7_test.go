package gpuengine

import (
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
