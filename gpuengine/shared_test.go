package gpuengine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
	"github.com/rwkvkit/rwkvkit/quantize"
)

// placed is the arena bytes matrix m takes.
func placed(m *matrix) int64 {
	var n int64
	for _, p := range m.pieces {
		n += alignUp(alignUp(int64(p.wBytes), align)+int64(p.pBytes), align)
	}
	return n
}

func arenaBytes(e *Engine) int64 {
	var n int64
	for _, b := range e.arenas {
		n += int64(b.GetSize())
	}
	return n
}

// A torch checkpoint whose head is tied to its embedding and whose layer 1
// is layer 0's tensors (two names of each storage, as torch saves tied
// weights) is uploaded with one copy of each shared matrix, exactly the
// bytes of those copies fewer than the same weights saved untied, and
// gives the CPU engine's logits of that checkpoint; so it is when its
// layers are quantized while it loads (tied matrices are quantized alike).
func TestTiedWeights(t *testing.T) {
	for _, name := range []string{"tiny-rwkv-4v0-660K", "tiny-rwkv-7v0-834K"} { // float16 (web-rwkv's conversions)
		for _, kind := range []format.DType{format.F16, format.Int8Block} {
			t.Run(name+"/"+kind.String(), func(t *testing.T) {
				src, tied, err := synth.Tie(openSource(t, filepath.Join(tinyDir, "st", name+".st")))
				if err != nil {
					t.Fatal(err)
				}
				var plan *quantize.Plan
				if kind != format.F16 {
					info, _ := format.Detect(src)
					if plan, err = quantize.NewPlan(info.Layers, quantize.Rule{Kind: kind, Layers: "all"}); err != nil {
						t.Fatal(err)
					}
				}
				read := func(tied map[string]string) *format.Source {
					back, _, err := synth.ReadTiedPTH(src, tied, filepath.Join(t.TempDir(), "m.pth"))
					if err != nil {
						t.Fatal(err)
					}
					return back
				}
				open := func(tied map[string]string) *Engine { return loadGPU(t, read(tied), &Options{Plan: plan}) }
				untied, e := open(nil), open(tied)
				var want int64
				shared := 0
				for _, s := range e.specs() {
					if s.n > 0 {
						continue
					}
					of := s.name
					if rest, ok := strings.CutPrefix(s.name, "blocks.1."); ok {
						of = "blocks.0." + rest
					} else if s.name == "head.weight" {
						of = "emb.weight"
					}
					if _, ok := untied.mats[of]; !ok || of == s.name {
						continue // not tied (RWKV-7's layer 0 has no value residual)
					}
					if untied.mats[s.name].kind != untied.mats[of].kind {
						continue // tied in the file, quantized one and not the other (the head and the embedding)
					}
					if e.mats[s.name] != e.mats[of] || untied.mats[s.name] == untied.mats[of] {
						t.Errorf("%s and %s: one matrix when tied %v, untied %v", s.name, of, e.mats[s.name] == e.mats[of], untied.mats[s.name] == untied.mats[of])
					}
					want += placed(untied.mats[s.name])
					shared++
				}
				if got := arenaBytes(untied) - arenaBytes(e); got != want {
					t.Errorf("the tied model takes %d bytes of weights fewer than untied, want %d (%d shared matrices)", got, want, shared)
				}
				t.Logf("%d matrices shared, %d of %d bytes of weights", shared, want, arenaBytes(untied))

				back := read(tied)
				if plan != nil {
					if back, err = quantize.Apply(context.Background(), back, plan, quantize.CPU{}); err != nil {
						t.Fatal(err)
					}
				}
				cpu := loadCPU(t, back)
				compare(t, "tied", runAll(t, e, newState(t, e), testTokens[:12], engine.OutputAll), cpuRows(t, cpu, testTokens[:12]), cpu.Info().Vocab, 1e-3)
			})
		}
	}
}
