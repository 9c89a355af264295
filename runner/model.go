package runner

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/rwkvkit/rwkvkit/format"
)

// Errors Load wraps, so that callers can tell a broken file from an
// unsupported one.
var (
	ErrMissingTensor = errors.New("missing tensor")
	ErrShape         = errors.New("tensor has the wrong shape")
	errDType         = errors.New("unsupported dtype")
)

// A Model is a loaded RWKV model. It is immutable, so one Model may serve
// any number of goroutines, each with its own State.
type Model struct {
	info   format.ModelInfo
	emb    matrix // [V, C]; one row is read per token
	ln0    norm
	layers []layer
	lnOut  norm
	head   matrix // [V, C]
}

type norm struct{ w, b []float32 }

type layer struct {
	ln1, ln2 norm
	att      timeMixer
	ffn      channelMix
}

// A timeMixer is one version's time mixing (the attention-like half of a
// layer), with its weights; each version has its own in its file (v4.go,
// v5.go, v6.go, v7.go), as package format has each version's files.
type timeMixer interface {
	// mix returns the time mixing of xa, the rows of pass p after ln1, in
	// layer l, advancing the memories of p's states. v7 records layer 0's
	// values in vFirst and mixes them into the later layers'.
	mix(d dims, xa []float32, p *pass, l int, a *arena, vFirst []float32) []float32
	// matrices lists the weight matrices (nil entries allowed).
	matrices() []matrix
}

// dims are the model's dimensions the computation needs.
type dims struct{ C, H, N int }

func (m *Model) dims() dims { return dims{m.info.Embed, m.info.Heads, m.info.HeadSize} }

// channelMix is the feed-forward half: out = σ(Wr·xr) ⊙ Wv·relu(Wk·xk)²
// (v7 has no receptance).
type channelMix struct {
	mixK, mixR []float32
	wk, wv, wr matrix
	// lerp: the token shift mixes as x⊙m + prev⊙(1−m) (v4, v5) rather
	// than x + (prev−x)⊙m (v6, v7).
	lerp bool
}

// Info describes the model as format.Detect saw it in the file.
func (m *Model) Info() format.ModelInfo { return m.info }

// maxLoaders bounds the tensors read at once while loading.
const maxLoaders = 8

// Load reads the model in src. It keeps float32 matrices as float32,
// float16/bfloat16 as 16-bit, Int8/NF4 as blocks; the source may be closed
// afterwards. Errors name the tensor at fault. ctx is checked before each
// tensor is read.
func Load(ctx context.Context, src *format.Source) (*Model, error) {
	info, err := format.Detect(src)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	if err := checkInfo(info); err != nil {
		return nil, err
	}
	norm, err := format.WebRWKV(src)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	m := &Model{info: info, layers: make([]layer, info.Layers)}
	C, V := info.Embed, info.Vocab
	// The parts load concurrently: reading (and, for artifacts, checksumming)
	// the weights is nearly all of a load, and it spreads over the cores.
	// Each part has its own loader; the first error in model order wins.
	parts := []func(l *loader){
		func(l *loader) { m.emb = l.mat("emb.weight", V, C) },
		func(l *loader) { m.head = l.mat("head.weight", V, C) },
		func(l *loader) { m.ln0, m.lnOut = l.norm("blocks.0.ln0", C), l.norm("ln_out", C) },
	}
	for i := range m.layers {
		parts = append(parts, func(l *loader) { l.layer(&m.layers[i], i) })
	}
	norm.Lookup("") // builds the name index before the concurrent lookups
	var sh shared
	errs := make([]error, len(parts))
	sem := make(chan struct{}, min(runtime.GOMAXPROCS(0), maxLoaders))
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			l := &loader{ctx: ctx, src: norm, info: info, shared: &sh}
			part(l)
			errs[i] = l.err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

func checkInfo(info format.ModelInfo) error {
	switch info.Version {
	case format.V4, format.V5_0, format.V5_1, format.V5_2, format.V6, format.V7:
	default:
		return fmt.Errorf("runner: RWKV version %q is not supported", info.Version)
	}
	if info.Version != format.V4 && (info.Heads <= 0 || info.Heads*info.HeadSize != info.Embed) {
		return fmt.Errorf("runner: %d heads of size %d do not make the embedding %d", info.Heads, info.HeadSize, info.Embed)
	}
	return nil
}

// bytesPerToken is the size of the weights one token reads: every matrix
// except the embedding, of which it reads one row.
func (m *Model) bytesPerToken() int64 {
	V, _ := m.emb.dims()
	n := m.emb.bytes()/int64(V) + m.head.bytes()
	add := func(ms ...matrix) {
		for _, x := range ms {
			if x != nil {
				n += x.bytes()
			}
		}
	}
	for i := range m.layers {
		f := &m.layers[i].ffn
		add(m.layers[i].att.matrices()...)
		add(f.wk, f.wv, f.wr)
	}
	return n
}
