// Package synth makes synthetic RWKV models of real shapes with random
// weights, for benchmarks and tests that need sizes the real fixtures do not
// have. Tensors are generated when read, so a multi-gigabyte model costs
// memory for one tensor at a time.
package synth

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math"

	"github.com/rwkvkit/rwkvkit/format"
)

// Config is the shape of a synthetic model; the low-rank sizes are
// RWKV-7's.
type Config struct {
	Layers, Embed, Vocab, HeadSize int
	DecayLoRA, ALoRA, VLoRA, GLoRA int
}

// Shapes of official RWKV-7 releases ("x070"): the 0.1B and 1.5B World models.
var (
	RWKV7_0_1B = Config{Layers: 12, Embed: 768, Vocab: 65536, HeadSize: 64, DecayLoRA: 64, ALoRA: 64, VLoRA: 32, GLoRA: 128}
	RWKV7_1_5B = Config{Layers: 24, Embed: 2048, Vocab: 65536, HeadSize: 64, DecayLoRA: 96, ALoRA: 96, VLoRA: 64, GLoRA: 256}
)

type spec struct {
	name  string
	shape []int64
	kind  int // how to fill it
}

const (
	fillMatrix = iota // uniform, scaled by 1/sqrt(fan-in)
	fillOne           // layer-norm weights
	fillZero          // biases
	fillMix           // token-shift mixes in [0, 1)
	fillSmall         // small offsets
	fillDecay         // v5 decays: exp(−exp(x)) from 0.19 to 0.9975
)

// RWKV7 returns a synthetic RWKV-7 model in RWKV-LM (.pth) layout whose
// floating-point tensors are of type dt (F32, F16 or BF16). The same seed
// gives the same bytes.
func RWKV7(cfg Config, dt format.DType, seed uint64) (*format.Source, error) {
	C, V := int64(cfg.Embed), int64(cfg.Vocab)
	H := C / int64(cfg.HeadSize)
	vec := []int64{1, 1, C}
	specs := []spec{{"emb.weight", []int64{V, C}, fillMatrix}}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("blocks.%d.", l)
		specs = append(specs, layerNorms(l, C)...)
		for _, x := range []string{"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"} {
			specs = append(specs, spec{p + "att." + x, vec, fillMix})
		}
		specs = append(specs,
			spec{p + "att.w0", vec, fillSmall},
			spec{p + "att.w1", []int64{C, int64(cfg.DecayLoRA)}, fillMatrix},
			spec{p + "att.w2", []int64{int64(cfg.DecayLoRA), C}, fillMatrix},
			spec{p + "att.a0", vec, fillSmall},
			spec{p + "att.a1", []int64{C, int64(cfg.ALoRA)}, fillMatrix},
			spec{p + "att.a2", []int64{int64(cfg.ALoRA), C}, fillMatrix})
		if l > 0 {
			specs = append(specs,
				spec{p + "att.v0", vec, fillSmall},
				spec{p + "att.v1", []int64{C, int64(cfg.VLoRA)}, fillMatrix},
				spec{p + "att.v2", []int64{int64(cfg.VLoRA), C}, fillMatrix})
		}
		specs = append(specs,
			spec{p + "att.g1", []int64{C, int64(cfg.GLoRA)}, fillMatrix},
			spec{p + "att.g2", []int64{int64(cfg.GLoRA), C}, fillMatrix},
			spec{p + "att.k_k", vec, fillMix},
			spec{p + "att.k_a", vec, fillMix},
			spec{p + "att.r_k", []int64{H, int64(cfg.HeadSize)}, fillSmall},
			spec{p + "att.receptance.weight", []int64{C, C}, fillMatrix},
			spec{p + "att.key.weight", []int64{C, C}, fillMatrix},
			spec{p + "att.value.weight", []int64{C, C}, fillMatrix},
			spec{p + "att.output.weight", []int64{C, C}, fillMatrix},
			spec{p + "att.ln_x.weight", []int64{C}, fillOne},
			spec{p + "att.ln_x.bias", []int64{C}, fillZero},
			spec{p + "ffn.x_k", vec, fillMix},
			spec{p + "ffn.key.weight", []int64{4 * C, C}, fillMatrix},
			spec{p + "ffn.value.weight", []int64{C, 4 * C}, fillMatrix})
	}
	return source(append(specs, head(C, V)...), dt, seed)
}

// layerNorms are the LayerNorms of layer l (ln0 too in layer 0).
func layerNorms(l int, C int64) []spec {
	p := fmt.Sprintf("blocks.%d.", l)
	var s []spec
	if l == 0 {
		s = append(s, spec{p + "ln0.weight", []int64{C}, fillOne}, spec{p + "ln0.bias", []int64{C}, fillZero})
	}
	return append(s,
		spec{p + "ln1.weight", []int64{C}, fillOne}, spec{p + "ln1.bias", []int64{C}, fillZero},
		spec{p + "ln2.weight", []int64{C}, fillOne}, spec{p + "ln2.bias", []int64{C}, fillZero})
}

// head is the final LayerNorm and the head.
func head(C, V int64) []spec {
	return []spec{
		{"ln_out.weight", []int64{C}, fillOne}, {"ln_out.bias", []int64{C}, fillZero},
		{"head.weight", []int64{V, C}, fillMatrix},
	}
}

// source makes the lazy tensors of specs.
func source(specs []spec, dt format.DType, seed uint64) (*format.Source, error) {
	src := &format.Source{Metadata: map[string]string{}}
	for _, s := range specs {
		s := s
		t, err := format.NewTensor(s.name, dt, s.shape, func() (io.ReadCloser, error) {
			return io.NopCloser(&filler{spec: s, dt: dt, rng: seedFor(seed, s.name), left: numel(s.shape)}), nil
		})
		if err != nil {
			return nil, err
		}
		src.Tensors = append(src.Tensors, t)
	}
	return src, nil
}

func numel(shape []int64) int64 {
	n, _ := format.NumElements(shape)
	return n
}

// seedFor is the state xorshift64* starts from for one tensor: a hash of
// its name and the seed, made odd (never zero). The seed is spread over
// the high bits first: setting the low bit alone would give seeds 2k and
// 2k+1 the same models.
func seedFor(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return (h.Sum64() ^ seed*0x9e3779b97f4a7c15) | 1
}

// filler streams a tensor's random values; xorshift64* is fast enough that
// generating a 3 GB model is not the bottleneck of what it is used to measure.
type filler struct {
	spec spec
	dt   format.DType
	rng  uint64
	left int64
	buf  [8]byte
	pend []byte
}

func (f *filler) next() float32 {
	f.rng ^= f.rng >> 12
	f.rng ^= f.rng << 25
	f.rng ^= f.rng >> 27
	u := float32((f.rng*2685821657736338717)>>40) / (1 << 24) // [0, 1)
	switch f.spec.kind {
	case fillOne:
		return 1
	case fillZero:
		return 0
	case fillMix:
		return u
	case fillSmall:
		return (u - 0.5) * 0.5
	case fillDecay:
		return -6 + 6.5*u
	}
	fanIn := f.spec.shape[len(f.spec.shape)-1]
	return (2*u - 1) * float32(math.Sqrt(3/float64(fanIn)))
}

func (f *filler) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(f.pend) > 0 {
			c := copy(p[n:], f.pend)
			f.pend = f.pend[c:]
			n += c
			continue
		}
		if f.left == 0 {
			if n == 0 {
				return 0, io.EOF
			}
			break
		}
		v := f.next()
		f.left--
		var b []byte
		switch f.dt {
		case format.F32:
			binary.LittleEndian.PutUint32(f.buf[:], math.Float32bits(v))
			b = f.buf[:4]
		case format.F16:
			binary.LittleEndian.PutUint16(f.buf[:], format.F32ToF16(v))
			b = f.buf[:2]
		default: // BF16, truncated: the values are random anyway
			binary.LittleEndian.PutUint16(f.buf[:], uint16(math.Float32bits(v)>>16))
			b = f.buf[:2]
		}
		if len(p)-n >= len(b) {
			n += copy(p[n:], b)
		} else {
			f.pend = b
		}
	}
	return n, nil
}
