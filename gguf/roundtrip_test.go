package gguf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gguf"
)

// TestReadBackAsWebRWKV reads rwkvkit's GGUF of each tiny model back and
// compares it, tensor for tensor, with the .pth in web-rwkv's layout: the
// same names (layer 0's copies of a0–a2 aside) and shapes, and the same
// values (exactly in F32; in F16, the values rounded to float16).
func TestReadBackAsWebRWKV(t *testing.T) {
	for _, m := range tinyModels {
		for _, typ := range []string{"f32", "f16"} {
			t.Run(m+"."+typ, func(t *testing.T) {
				pth, err := format.Open(filepath.Join(tinyDir, m+".pth"))
				if err != nil {
					t.Fatal(err)
				}
				defer pth.Close()
				want, err := format.WebRWKV(pth)
				if err != nil {
					t.Fatal(err)
				}
				b := writeTiny(t, m, typ)
				got, err := gguf.Open(bytes.NewReader(b), int64(len(b)))
				if err != nil {
					t.Fatal(err)
				}
				if len(got.Tensors) != len(want.Tensors) {
					t.Errorf("%d tensors, the .pth has %d", len(got.Tensors), len(want.Tensors))
				}
				for _, w := range want.Tensors {
					g := got.Lookup(w.Name)
					if g == nil {
						t.Errorf("no tensor %s", w.Name)
						continue
					}
					if !slices.Equal(g.Shape, w.Shape) {
						t.Errorf("%s: shape %v, want %v", w.Name, g.Shape, w.Shape)
					}
					gv, err1 := g.Float32()
					wv, err2 := w.Float32()
					if err1 != nil || err2 != nil {
						t.Fatal(err1, err2)
					}
					if g.DType == format.F16 { // rounded to nearest even, as numpy does
						for i, v := range wv {
							wv[i] = format.F16ToF32(format.F32ToF16(v))
						}
					}
					if !slices.Equal(gv, wv) {
						t.Errorf("%s: values differ", w.Name)
					}
				}
				info, err := format.Detect(got)
				if err != nil {
					t.Fatal(err)
				}
				winfo, _ := format.Detect(pth)
				winfo.Layout, winfo.Params = info.Layout, info.Params
				if info != winfo {
					t.Errorf("detected %+v, the .pth gives %+v", info, winfo)
				}
			})
		}
	}
}

// TestWriteRefusesOtherVersions: llama.cpp runs no RWKV-4 or RWKV-5.
func TestWriteRefusesOtherVersions(t *testing.T) {
	for _, m := range []string{"tiny-rwkv-4v0-660K", "tiny-rwkv-5v2-730K"} {
		src, err := format.Open(filepath.Join(tinyDir, m+".pth"))
		if err != nil {
			t.Fatal(err)
		}
		err = gguf.Write(new(bytes.Buffer), src, nil)
		src.Close()
		if !errors.Is(err, gguf.ErrNoArchitecture) {
			t.Errorf("%s: %v, want ErrNoArchitecture", m, err)
		}
	}
}

// TestRescaleUndone: a file whose converter divided layer l's output and
// channel-mix value by 2^⌊l/n⌋ (rwkv6.rescale_every_n_layers = n, as
// llama.cpp's converter does for HF models) reads back as the model's own
// weights. The file is rwkvkit's RWKV-6 F32 GGUF rescaled in place.
func TestRescaleUndone(t *testing.T) {
	const n = 6
	orig := writeTiny(t, "tiny-rwkv-6v0-1m", "f32")
	b := slices.Clone(orig)
	key := []byte("rwkv6.rescale_every_n_layers")
	i := bytes.Index(b, key)
	if i < 0 {
		t.Fatal("no rescale key")
	}
	binary.LittleEndian.PutUint32(b[i+len(key)+4:], n) // after the key, its u32 value type
	f, err := gguf.ReadFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	scaled := 0
	for _, ti := range f.Tensors {
		var l int
		var rest string
		if _, err := fmt.Sscanf(ti.Name, "blk.%d.%s", &l, &rest); err != nil || (rest != "time_mix_output.weight" && rest != "channel_mix_value.weight") {
			continue
		}
		data := b[f.DataOffset+ti.Offset : f.DataOffset+ti.Offset+ti.Size]
		for j := 0; j < len(data); j += 4 {
			v := math.Float32frombits(binary.LittleEndian.Uint32(data[j:]))
			binary.LittleEndian.PutUint32(data[j:], math.Float32bits(float32(math.Ldexp(float64(v), -(l/n)))))
		}
		if l >= n {
			scaled++
		}
	}
	if scaled == 0 {
		t.Fatal("nothing rescaled")
	}
	got, err := gguf.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	want, err := gguf.Open(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want.Tensors {
		gv, err1 := got.Lookup(w.Name).Float32()
		wv, err2 := w.Float32()
		if err1 != nil || err2 != nil || !slices.Equal(gv, wv) {
			t.Errorf("%s: differs after undoing the rescale (%v, %v)", w.Name, err1, err2)
		}
	}
}
