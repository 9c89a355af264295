package gpuengine

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

// The one-token kernel (matvec1.wgsl) gives the CPU engine's logits step by
// step in every quantized kind, on a model whose rows take a lane several
// column steps and end inside a lane's (576 and 2304 columns) and whose
// Int8 blocks cross rows; every product of a step with a quantized job runs
// it, and no product of two tokens, nor one of float16 jobs alone, does.
func TestOneTokenKernel(t *testing.T) {
	base, err := synth.RWKV7(wideV7, format.F16, wideSeed)
	if err != nil {
		t.Fatal(err)
	}
	const steps = 4
	for _, wk := range weightKinds {
		t.Run(wk.name, func(t *testing.T) {
			src := quantized(t, base, wk.kind)
			want := cpuRows(t, loadCPU(t, src), testTokens[:steps])
			e := loadGPU(t, src, nil)
			one, product := map[*gpu.Kernel]bool{}, map[*gpu.Kernel]bool{}
			for key, k := range e.kernels {
				one[k] = strings.HasPrefix(key, "linear.wgsl+matvec1.")
				product[k] = strings.HasPrefix(key, "linear.wgsl")
			}
			ones := 0
			for _, o := range e.prog {
				if !product[o.kernels[0]] {
					continue
				}
				quantized := false
				for i := range int(binary.LittleEndian.Uint32(o.params)) {
					quantized = quantized || binary.LittleEndian.Uint32(o.params[4*(4+16*i+2):]) != kindF16
				}
				for _, sh := range []shape{{T: 1, S: 1, R: 1}, {T: 2, S: 1, R: 2}} {
					v, x, _ := o.grid(sh)
					if x == 0 {
						continue
					}
					if got, want := one[o.kernels[v]], quantized && sh.T == 1; got != want {
						t.Errorf("%s over %d tokens: the one-token kernel %v, want %v", o.name, sh.T, got, want)
					}
					if one[o.kernels[v]] {
						ones++
					}
				}
			}
			if wk.kind != format.Invalid && ones == 0 {
				t.Fatal("no product takes the one-token kernel")
			}
			s := newState(t, e)
			var got []float32
			for _, tok := range testTokens[:steps] {
				got = append(got, runAll(t, e, s, []int{tok}, engine.OutputLast)...)
			}
			compare(t, "token by token", got, want, e.Info().Vocab, 1e-3)
		})
	}
}
