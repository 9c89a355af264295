package gpuengine

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

// Benchmarks run synthetic RWKV-7 models of the official shapes (random
// weights made on the GPU; speed does not depend on the values):
//
//	go test ./gpuengine -run - -bench . -benchtime 32x -gpuengine.shapes 0.1B,1.5B,7B
//
// -gpuengine.profile prints, per shape, the wall time of every op of a
// decode step and of a prompt pass, each op submitted and waited for alone.
var (
	benchShapes  = flag.String("gpuengine.shapes", "0.1B", "synthetic shapes to benchmark: 0.1B, 1.5B, 7B")
	benchChunk   = flag.Int("gpuengine.chunk", 0, "tokens per pass in the benchmarks (0: the engine's default)")
	benchRows    = flag.Int("gpuengine.logitrows", 0, "output rows whose logits the GPU holds at once (0: the engine's default)")
	benchSubmit  = flag.String("gpuengine.submit", "", "ops of the first and of the largest submission of a pass of many tokens, e.g. 16,64")
	benchStepSub = flag.String("gpuengine.stepsubmit", "", "ops of the first and of the largest submission of a pass of few tokens, e.g. 32,128")
	benchMV      = flag.String("gpuengine.mv", "", "lanes per quad and rows per workgroup of the matrix-vector kernel, e.g. 32,32")
	benchProfile = flag.Bool("gpuengine.profile", false, "print a per-op profile of a step, of a prompt pass and of a batch step")
	benchTile    = flag.Int("gpuengine.tile", 0, "matrix-matrix tile of every dispatch: 1 128×128, 2 64×64 (0: chosen by size)")
	benchFill    = flag.Int("gpuengine.fill", 0, "workgroups a matrix-matrix dispatch should have when its tile is chosen by size (0: the engine's default)")
	benchSplit   = flag.Int("gpuengine.split", 0, "most parts a one-job matrix-matrix dispatch splits its columns into: 1, 2, 4, 8 or 16 (0: the engine's default)")
	benchTMLanes = flag.Int("gpuengine.tmlanes", 0, "threads per channel of the RWKV-7 time mix for the second LoRA stages: 1, 2 or 4 (0: the default)")
	benchCopy    = flag.Int("gpuengine.copiers", 0, "most goroutines copying logits out (0: the default)")
	benchTMLoRA  = flag.Int("gpuengine.tmlora", -1, "most segments of a pass whose RWKV-7 time mix makes the second LoRA stages (0: never; -1: the default)")
	benchSpans   = flag.Int("gpuengine.spans", -1, "tokens of the shortest span of a prompt's RWKV-7 recurrence (0: a segment is one span; -1: the default)")
	benchSpanWk  = flag.Int("gpuengine.spanwork", 0, "most spans × heads of a pass's RWKV-7 recurrence before its spans grow longer (0: the default)")
	benchSpanWG  = flag.Int("gpuengine.spangroups", 0, "most segments × heads of a pass whose RWKV-7 recurrence is cut into spans (0: the default)")
	benchMMKinds = flag.Int("gpuengine.mmkinds", -1, "tiles (bit v: tile v) in which float16 products of prompts and batches get matrix-matrix kernels of their own (-1: the default)")
	benchHalf    = flag.Int("gpuengine.halfrows", 0, "fewest rows of a pass's last chunk of logits that go through the head in halves (0: the default)")
	benchMV1     = flag.Bool("gpuengine.mv1", true, "a step's quantized products take the kernel of one sum a row (false: the kernel of up to 4 tokens)")
	benchDrop    = flag.String("gpuengine.drop", "", "ops (a regular expression of their names) the profile's whole pass leaves out, to time the rest")
	benchPairs   = flag.Bool("gpuengine.mmpairs", true, "the matrix-matrix kernel's lanes read workgroup memory in pairs (false: the layout before)")
	benchPairG   = flag.Bool("gpuengine.mmfetch2", true, "the 128×128 matrix-matrix tile's threads fetch two slices at once (false: one a slice)")
	benchSplitJs = flag.Int("gpuengine.splitjobs", -1, "fewest 64×64 workgroups with which a matrix-matrix dispatch of several products is not split into parts (0: never split; -1: the default)")
	benchDowns   = flag.Int("gpuengine.downs", 0, "download buffers a pass's chunks of logits take in turn (0: the default)")
	benchStream  = flag.String("gpuengine.stream", "", "stream dispatches: which (0 none, 1 of several products and large ones of one, 2 all), workgroups, tiles of a large product of one, fewest slices a workgroup, slices a workgroup of a large product of one (0: none), e.g. 1,264,264,32,256")
	benchDirect  = flag.Bool("gpuengine.direct", true, "the head writes the logits into host memory where the device allows it (false: copied there after it)")
)

var benchKinds = []struct {
	name string
	kind format.DType
}{{"F16", format.F16}, {"Int8", format.Int8Block}, {"NF4", format.NF4Block}}

var benchCache struct {
	key string
	e   *Engine
}

// benchEngine returns the synthetic engine of shape and kind, reusing the
// last one when it is the same (one model is on the device at a time).
func benchEngine(b *testing.B, sh synthShape, kind format.DType) *Engine {
	b.Helper()
	if !strings.Contains(","+*benchShapes+",", ","+sh.name+",") {
		b.Skipf("shape %s not in -gpuengine.shapes", sh.name)
	}
	if *benchMV != "" {
		if _, err := fmt.Sscanf(*benchMV, "%d,%d", &mvLanes, &mvRows); err != nil || mvLanes < 4 || mvRows%4 != 0 {
			b.Fatalf("-gpuengine.mv %q: want LANES,ROWS", *benchMV)
		}
	}
	if *benchSubmit != "" {
		if _, err := fmt.Sscanf(*benchSubmit, "%d,%d", &firstSubmit, &maxSubmit); err != nil || firstSubmit < 1 || maxSubmit < firstSubmit {
			b.Fatalf("-gpuengine.submit %q: want FIRST,MAX", *benchSubmit)
		}
	}
	if *benchStepSub != "" {
		if _, err := fmt.Sscanf(*benchStepSub, "%d,%d", &stepSubmit[0], &stepSubmit[1]); err != nil || stepSubmit[0] < 1 || stepSubmit[1] < stepSubmit[0] {
			b.Fatalf("-gpuengine.stepsubmit %q: want FIRST,MAX", *benchStepSub)
		}
	}
	if *benchFill > 0 {
		mmFill = *benchFill
	}
	if *benchSplit > 0 {
		mmSplit = *benchSplit
	}
	if *benchTMLanes != 0 {
		timeMixLanes = *benchTMLanes
	}
	if *benchCopy > 0 {
		copyWorkers = *benchCopy
	}
	if *benchTMLoRA >= 0 {
		timeMixLoRAMax = *benchTMLoRA
	}
	if *benchSpans >= 0 {
		spanTokens = *benchSpans
	}
	if *benchSpanWk > 0 {
		spanWork = *benchSpanWk
	}
	if *benchSpanWG > 0 {
		spanGroups = *benchSpanWG
	}
	directLogits = *benchDirect
	if *benchMMKinds >= 0 {
		mmKindTiles = *benchMMKinds
	}
	if *benchHalf > 0 {
		halfChunkRows = *benchHalf
	}
	oneTokenKernel = *benchMV1
	mmPairLanes = *benchPairs
	mmPairFetch = *benchPairG
	if *benchDowns > 0 {
		downloadBuffers = *benchDowns
	}
	if *benchSplitJs >= 0 {
		mmSplitJobs = *benchSplitJs
	}
	if *benchStream != "" {
		if _, err := fmt.Sscanf(*benchStream, "%d,%d,%d,%d,%d", &mmStream, &mmStreams, &mmStreamTiles, &mmStreamMin, &mmStreamOne); err != nil || mmStreams < 1 || mmStreamMin < 1 {
			b.Fatalf("-gpuengine.stream %q: want WHICH,WORKGROUPS,TILES,SLICES,ONE", *benchStream)
		}
	}
	key := fmt.Sprint(sh.name, kind, *benchChunk, *benchRows, mvLanes, mvRows, timeMixLanes, mmSplit, directLogits, spanTokens, spanGroups, spanWork, mmKindTiles, oneTokenKernel, mmPairLanes, mmPairFetch, downloadBuffers, mmSplitJobs, mmStream, mmStreams, mmStreamTiles, mmStreamMin, mmStreamOne)
	if benchCache.key == key {
		return benchCache.e
	}
	if benchCache.e != nil {
		benchCache.e.Close()
		benchCache.e, benchCache.key = nil, ""
	}
	d := gputest.Device(b)
	t := time.Now()
	e, err := loadSynthetic(d, sh.info(), kind, &Options{Chunk: *benchChunk, LogitRows: *benchRows})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s %v: made on the GPU in %v, %.2f GB of weights read per token, logits written to host memory by the head: %v",
		sh.name, kind, time.Since(t), float64(e.weightBytes())/1e9, e.direct)
	e.tile = *benchTile
	benchCache.e, benchCache.key = e, key
	return e
}

// weightBytes is the size of the weights one token reads: every matrix but
// the embedding, of which it reads one row.
func (e *Engine) weightBytes() int64 {
	var n int64
	for name, m := range e.mats {
		for _, p := range m.pieces {
			n += int64(p.wBytes + p.pBytes)
		}
		if name == "emb.weight" {
			n -= int64(m.rows-1) * int64(codeBytes(m.kind, m.cols))
		}
	}
	return n
}

// multiplyAdds is the multiply-adds of the matrix products of one token
// (the head included, the embedding not).
func (e *Engine) multiplyAdds() int64 {
	var n int64
	for name, m := range e.mats {
		if name != "emb.weight" {
			n += int64(m.rows) * int64(m.cols)
		}
	}
	return n
}

func run(b *testing.B, e *Engine, batch []engine.Sequence) {
	if err := e.Run(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
}

func benchTokens(n int) []int {
	t := make([]int, n)
	for i := range t {
		t[i] = (i*2654435761 + 17) % 65536
	}
	return t
}

// BenchmarkDecode generates one token at a time (batch 1, the logits read
// back every step).
func BenchmarkDecode(b *testing.B) {
	for _, sh := range synthShapes {
		for _, k := range benchKinds {
			b.Run(sh.name+"/"+k.name, func(b *testing.B) {
				e := benchEngine(b, sh, k.kind)
				s, _ := e.NewState()
				batch := []engine.Sequence{{Tokens: []int{123}, State: s, Output: engine.OutputLast}}
				// A new engine's first steps cost about 150 ms more in all
				// (7B, float16, on an H200, after a smaller engine; a 3 s
				// pause before them did not change it).
				for range 32 {
					run(b, e, batch)
				}
				var rec time.Duration
				start := time.Now()
				for b.Loop() {
					run(b, e, batch)
					rec += e.Stats().Record
				}
				sec := time.Since(start).Seconds() / float64(b.N)
				b.ReportMetric(1/sec, "tokens/s")
				b.ReportMetric(float64(e.weightBytes())/sec/1e9, "weightGB/s")
				b.ReportMetric(float64(e.Stats().Dispatches), "dispatches")
				b.ReportMetric(float64(rec.Microseconds())/float64(b.N), "record-µs")
				if *benchProfile {
					profileOf(b, e, 1, 1)
				}
			})
		}
	}
}

// BenchmarkPrompt feeds a 2048-token prompt, logits of the last position
// (Prompt) or of every position (Verify).
func BenchmarkPrompt(b *testing.B) {
	for _, sh := range synthShapes {
		for _, out := range []engine.Output{engine.OutputLast, engine.OutputAll} {
			name := "Prompt"
			if out == engine.OutputAll {
				name = "Verify"
			}
			b.Run(sh.name+"/"+name, func(b *testing.B) {
				e := benchEngine(b, sh, format.F16)
				toks := benchTokens(2048)
				s, _ := e.NewState()
				// A whole pass first: a new engine's first pass over
				// memory it has not touched yet costs more (the first
				// steps of decode), and a shorter one leaves most of the
				// pass's activations untouched, so that the measured
				// passes paid for it: a 1.5B prompt on an H200 ran at
				// 8,024 tokens/s after a 64-token warm-up and 9,530 in
				// the same process's next engine of that shape.
				batch := []engine.Sequence{{Tokens: toks, State: s, Output: out}}
				run(b, e, batch)
				start := time.Now()
				for b.Loop() {
					run(b, e, batch)
				}
				sec := time.Since(start).Seconds() / float64(b.N)
				tps := float64(len(toks)) / sec
				flops := 2 * float64(e.multiplyAdds()) * tps
				b.ReportMetric(tps, "tokens/s")
				b.ReportMetric(flops/1e12, "TFLOP/s")
				b.ReportMetric(flops/67e12, "ofFP32peak")
				if out == engine.OutputAll {
					reportLogitsWay(b, e)
				}
				if *benchProfile && out == engine.OutputLast {
					profileOf(b, e, e.tcap, 1)
				}
			})
		}
	}
}

// BenchmarkBatch generates one token for each of B sequences per step.
func BenchmarkBatch(b *testing.B) {
	for _, sh := range synthShapes {
		for _, B := range []int{64, 256} {
			b.Run(fmt.Sprintf("%s/B=%d", sh.name, B), func(b *testing.B) {
				e := benchEngine(b, sh, format.F16)
				batch := make([]engine.Sequence, B)
				for i := range batch {
					s, err := e.NewState()
					if err != nil {
						b.Fatal(err)
					}
					batch[i] = engine.Sequence{Tokens: []int{i}, State: s, Output: engine.OutputLast}
				}
				run(b, e, batch)
				start := time.Now()
				for b.Loop() {
					run(b, e, batch)
				}
				sec := time.Since(start).Seconds() / float64(b.N)
				b.ReportMetric(float64(B)/sec, "tokens/s")
				b.ReportMetric(float64(e.Stats().Dispatches), "dispatches")
				reportLogitsWay(b, e)
				if *benchProfile && B == 256 {
					profileOf(b, e, B, B)
				}
			})
		}
	}
}

// reportLogitsWay reports how long the last Run waited for the GPU's
// logits and copied them out.
func reportLogitsWay(b *testing.B, e *Engine) {
	st := e.Stats()
	b.ReportMetric(float64(st.Wait.Microseconds())/1e3, "wait-ms")
	b.ReportMetric(float64(st.Copy.Microseconds())/1e3, "copy-ms")
}

// profileOf prints the per-op wall times of a pass of T tokens of S
// sequences (one output row).
func profileOf(b *testing.B, e *Engine, T, S int) {
	batch := make([]engine.Sequence, S)
	states := make([]*State, S)
	for i := range batch {
		s, _ := e.NewState()
		states[i] = s.(*State)
		batch[i] = engine.Sequence{Tokens: benchTokens(T / S), State: s, Output: engine.OutputLast}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.d.Lock()
	defer e.d.Unlock()
	sh, _ := e.planPass(batch, states, make([]int, S), nil)
	if *benchDrop != "" {
		drop := regexp.MustCompile(*benchDrop)
		for _, o := range e.prog {
			if drop.MatchString(o.name) {
				grid := o.grid
				o.grid = func(shape) (int, uint32, uint32) { return 0, 0, 0 }
				defer func() { o.grid = grid }()
			}
		}
	}
	var prof map[string]time.Duration
	var whole time.Duration
	what := "GPU timestamps; each op in a pass of its own"
	for range 3 { // the last of three runs
		var err error
		prof, whole, err = e.profileGPU(sh)
		if err != nil {
			what = "wall time; each op submitted and waited for alone"
			b.Logf("no timestamps (%v)", err)
			if prof, err = e.profile(sh); err != nil {
				b.Fatal(err)
			}
		}
	}
	names := make([]string, 0, len(prof))
	var total time.Duration
	for n, d := range prof {
		names = append(names, n)
		total += d
	}
	sort.Slice(names, func(i, j int) bool { return prof[names[i]] > prof[names[j]] })
	var sb strings.Builder
	fmt.Fprintf(&sb, "profile of a pass of %d tokens (%s): ops %v; the whole pass as one compute pass %v\n", T, what, total, whole)
	for _, n := range names {
		fmt.Fprintf(&sb, "  %-24s %10v %5.1f%%\n", n, prof[n], 100*float64(prof[n])/float64(total))
	}
	b.Log(sb.String())
}
