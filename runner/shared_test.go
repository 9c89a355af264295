package runner

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

// A torch checkpoint whose head is tied to its embedding and whose layer 1
// is layer 0's tensors (two names of each storage, as torch saves tied
// weights) loads with one copy of each shared weight, and gives bit for
// bit the logits of the same weights saved untied, for every tiny model.
func TestTiedWeightsLoadOnce(t *testing.T) {
	for _, tm := range readTinyIndex(t).Models {
		t.Run(tm.Version, func(t *testing.T) {
			base := openTiny(t, tm.Pth)
			src, tied := tiedCopy(t, base)
			untiedM, untiedBytes := loadPTH(t, src, nil)
			tiedM, tiedBytes := loadPTH(t, src, tied)

			if weights(tiedM.head) != weights(tiedM.emb) || weights(untiedM.head) == weights(untiedM.emb) {
				t.Errorf("head and embedding share weights: tied %v, untied %v",
					weights(tiedM.head) == weights(tiedM.emb), weights(untiedM.head) == weights(untiedM.emb))
			}
			want := tiedM.head.bytes() // held once less
			l0, l1 := &tiedM.layers[0], &tiedM.layers[1]
			ms0, ms1 := append(l0.att.matrices(), l0.ffn.wk, l0.ffn.wv, l0.ffn.wr), append(l1.att.matrices(), l1.ffn.wk, l1.ffn.wv, l1.ffn.wr)
			for i := range ms1 {
				if ms0[i] == nil || ms1[i] == nil {
					continue // v7's layer 0 has no value residual
				}
				if weights(ms0[i]) != weights(ms1[i]) {
					t.Errorf("matrix %d of layer 1 is not layer 0's", i)
				}
				want += ms1[i].bytes()
			}
			if &l0.ln1.w[0] != &l1.ln1.w[0] || &l0.ffn.mixK[0] != &l1.ffn.mixK[0] {
				t.Error("layer 1's vectors are not layer 0's")
			}
			if got := residentBytes(untiedM) - residentBytes(tiedM); got != want {
				t.Errorf("tied model holds %d bytes of matrices less than untied, want %d", got, want)
			}
			if tiedBytes >= untiedBytes-int(want)/2 {
				t.Errorf("tied file of %d bytes, untied %d: the storages were not shared", tiedBytes, untiedBytes)
			}

			tokens := []int{1, 17, 42, 255, 3, 99, 128, 7}
			a, err := untiedM.Forward(untiedM.newState(), tokens, true)
			if err != nil {
				t.Fatal(err)
			}
			b, err := tiedM.Forward(tiedM.newState(), tokens, true)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a, b) {
				t.Error("tied and untied weights give different logits")
			}
		})
	}
}

// tiedCopy returns base tied as synth.Tie ties it, and the names so
// copied, each mapped to the name whose values it holds.
func tiedCopy(t *testing.T, base *format.Source) (*format.Source, map[string]string) {
	src, tied, err := synth.Tie(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(tied) < 10 {
		t.Fatalf("only %d tensors to tie", len(tied))
	}
	return src, tied
}

// loadPTH saves src as a torch checkpoint, tied as given, and loads it
// through the checkpoint reader; it returns the model and the file's size.
func loadPTH(t *testing.T, src *format.Source, tied map[string]string) (*Model, int) {
	back, size, err := synth.ReadTiedPTH(src, tied, filepath.Join(t.TempDir(), "m.pth"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(context.Background(), back)
	if err != nil {
		t.Fatal(err)
	}
	return m, size
}

// weights is the address of a dense matrix's first weight: equal for two
// matrices that hold the same memory.
func weights(m matrix) unsafe.Pointer {
	switch d := m.(type) {
	case *denseF32:
		return unsafe.Pointer(&d.w[0])
	case *dense16:
		return unsafe.Pointer(&d.w[0])
	}
	panic("weights of a quantized matrix")
}

// residentBytes is the size of the distinct matrices m holds.
func residentBytes(m *Model) int64 {
	seen := map[unsafe.Pointer]bool{}
	var n int64
	add := func(ms ...matrix) {
		for _, x := range ms {
			if x != nil && !seen[weights(x)] {
				seen[weights(x)] = true
				n += x.bytes()
			}
		}
	}
	add(m.emb, m.head)
	for i := range m.layers {
		ly := &m.layers[i]
		add(ly.att.matrices()...)
		add(ly.ffn.wk, ly.ffn.wv, ly.ffn.wr)
	}
	return n
}
