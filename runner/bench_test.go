package runner

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

// Benchmarks run synthetic RWKV-7 models of the official 0.1B and 1.5B
// shapes (random weights: speed does not depend on the values).
//
//	go test ./runner -run - -bench . -benchtime 20x        # all, 1.5B needs ~10 GB
//	go test ./runner -run - -bench . -short                # 0.1B only
//	go test ./runner -run - -bench Decode                  # batched generation, B = 1, 8, 32

type benchModel struct {
	name string
	cfg  synth.Config
	dt   format.DType
	big  bool
}

var benchModels = []benchModel{
	{"0.1B-F16", synth.RWKV7_0_1B, format.F16, false},
	{"0.1B-F32", synth.RWKV7_0_1B, format.F32, false},
	{"1.5B-F16", synth.RWKV7_1_5B, format.F16, true},
	{"1.5B-F32", synth.RWKV7_1_5B, format.F32, true},
}

// synthModel loads a synthetic model; the last one loaded is kept, so the
// Step and Prompt benchmarks of one model share a load.
func synthModel(b *testing.B, bm benchModel) *Model {
	b.Helper()
	if bm.big && testing.Short() {
		b.Skip("1.5B models skipped in -short mode")
	}
	cache.Lock()
	defer cache.Unlock()
	if cache.name == bm.name {
		return cache.m
	}
	cache.m, cache.name = nil, ""
	src, err := synth.RWKV7(bm.cfg, bm.dt, 1)
	if err != nil {
		b.Fatal(err)
	}
	m, err := Load(context.Background(), src)
	if err != nil {
		b.Fatal(err)
	}
	cache.m, cache.name = m, bm.name
	return m
}

var cache struct {
	sync.Mutex
	name string
	m    *Model
}

func BenchmarkStep(b *testing.B) {
	for _, bm := range benchModels {
		b.Run(bm.name, func(b *testing.B) {
			m := synthModel(b, bm)
			s := m.newState()
			if _, err := m.Forward(s, promptTokens(16), false); err != nil {
				b.Fatal(err)
			}
			// The bandwidth of this machine moves with what else runs on its
			// host: measure it right before and after, and take the best.
			bw := memoryBandwidth()
			tok := 0
			start := time.Now()
			for b.Loop() {
				if _, err := m.Step(s, tok); err != nil {
					b.Fatal(err)
				}
				tok = (tok + 7919) % m.info.Vocab
			}
			tps := float64(b.N) / time.Since(start).Seconds()
			bw = max(bw, memoryBandwidth())
			weights := float64(m.bytesPerToken()) * tps / 1e9
			b.ReportMetric(tps, "tokens/s")
			b.ReportMetric(weights, "weightGB/s")
			b.ReportMetric(bw, "memGB/s")
			b.ReportMetric(weights/bw, "ofBandwidth")
		})
	}
}

func BenchmarkPrompt(b *testing.B) {
	const n = 512
	for _, bm := range benchModels {
		b.Run(bm.name, func(b *testing.B) {
			m := synthModel(b, bm)
			toks := promptTokens(n)
			start := time.Now()
			for b.Loop() {
				if _, err := m.Forward(m.newState(), toks, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "tokens/s")
		})
	}
}

// BenchmarkDecode generates one token for each of B sequences per Run, the
// rows of all of them in the same products (0.1B float16).
func BenchmarkDecode(b *testing.B) {
	bm := benchModels[0]
	for _, B := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("%s/B=%d", bm.name, B), func(b *testing.B) {
			m := synthModel(b, bm)
			batch := make([]engine.Sequence, B)
			for i := range batch {
				toks := promptTokens(16 + i)[i:] // each its own prompt
				batch[i] = engine.Sequence{Tokens: toks, State: m.newState(), Output: engine.OutputLast}
			}
			if err := m.Run(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			one := make([][]int, B)
			for i := range batch {
				one[i] = []int{0}
				batch[i].Tokens = one[i]
			}
			bw := memoryBandwidth() // the host's conditions, as in BenchmarkStep
			tok := 0
			start := time.Now()
			for b.Loop() {
				for i := range batch {
					tok = (tok + 7919) % m.info.Vocab
					one[i][0] = tok
				}
				if err := m.Run(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			tps := float64(B*b.N) / time.Since(start).Seconds()
			b.ReportMetric(tps, "tokens/s")
			b.ReportMetric(tps/float64(B), "tokens/s/seq")
			b.ReportMetric(max(bw, memoryBandwidth()), "memGB/s")
		})
	}
}

func promptTokens(n int) []int {
	t := make([]int, n)
	for i := range t {
		t[i] = (i*2654435761 + 17) % 65536
	}
	return t
}

// BenchmarkMemoryBandwidth sums 1 GiB of float32 on every core.
func BenchmarkMemoryBandwidth(b *testing.B) {
	buf := bandwidthBuffer()
	b.SetBytes(int64(len(buf)) * 4)
	start := time.Now()
	for b.Loop() {
		sumParallel(buf)
	}
	b.ReportMetric(float64(len(buf))*4*float64(b.N)/time.Since(start).Seconds()/1e9, "GB/s")
}

var bandwidth struct {
	sync.Mutex
	buf []float32
}

func bandwidthBuffer() []float32 {
	bandwidth.Lock()
	defer bandwidth.Unlock()
	if bandwidth.buf == nil {
		// Random values: a buffer of equal pages can be merged by the host
		// (KSM) and then read from cache, which doubles the apparent speed.
		bandwidth.buf = make([]float32, 1<<28)
		r := uint64(88172645463325252)
		for i := range bandwidth.buf {
			r ^= r << 13
			r ^= r >> 7
			r ^= r << 17
			bandwidth.buf[i] = float32(r>>40) / (1 << 24)
		}
	}
	return bandwidth.buf
}

// memoryBandwidth is the best of three 1 GiB parallel sums, in GB/s.
func memoryBandwidth() float64 {
	buf := bandwidthBuffer()
	var best float64
	for range 3 {
		start := time.Now()
		sumParallel(buf)
		best = max(best, float64(len(buf))*4/time.Since(start).Seconds()/1e9)
	}
	return best
}

var sumSink float32

func sumParallel(buf []float32) {
	n := workers()
	part := len(buf) / n
	sums := make([]float32, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() { sums[w] = sumF32(buf[w*part : (w+1)*part]) })
	}
	wg.Wait()
	for _, s := range sums {
		sumSink += s
	}
}
