package format

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

// Every float16 bit pattern widens to float32 and rounds back to itself;
// NaNs stay NaNs of the same sign.
func TestF16RoundTripAllPatterns(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		back := F32ToF16(f)
		if f != f {
			if back&0x7c00 != 0x7c00 || back&0x03ff == 0 || back>>15 != h>>15 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
}

func TestF32ToF16Rounding(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{65504, 0x7bff},
		{65520, 0x7c00},                  // halfway to the next binade rounds up to Inf
		{65519.996, 0x7bff},              // just below rounds down
		{float32(math.Inf(1)), 0x7c00},   // +Inf
		{float32(math.Inf(-1)), 0xfc00},  // −Inf
		{5.960464477539063e-08, 0x0001},  // smallest subnormal
		{2.9802322387695312e-08, 0x0000}, // half of it: tie to even (0)
		{8.940696716308594e-08, 0x0002},  // 1.5 × smallest: tie to even (2)
		{1 + 1.0/2048, 0x3c00},           // tie between 1 and 1+2^-10 → even
		{1 + 3.0/2048, 0x3c02},           // tie → even (up)
		{6.097555160522461e-05, 0x03ff},  // largest subnormal
		{-2, 0xc000},
	}
	for _, tc := range tests {
		if got := F32ToF16(tc.in); got != tc.want {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
}

func TestConvertToF16FromBF16(t *testing.T) {
	// bf16 1.0 = 0x3f80, bf16 -0 = 0x8000, bf16 3.0e38 overflows f16 to Inf.
	src := []byte{0x80, 0x3f, 0x00, 0x80, 0x62, 0x7f}
	dst := make([]byte, 6)
	if err := ConvertToF16(dst, src, BF16); err != nil {
		t.Fatal(err)
	}
	want := []uint16{0x3c00, 0x8000, 0x7c00}
	for i, w := range want {
		if got := binary.LittleEndian.Uint16(dst[2*i:]); got != w {
			t.Errorf("element %d = %#04x, want %#04x", i, got, w)
		}
	}
}

func TestStorageSize(t *testing.T) {
	tests := []struct {
		dt   DType
		n    int64
		want int64
		err  bool
	}{
		{F16, 10, 20, false},
		{F32, 1 << 62, 0, true},
		{Int8Block, 128, 128 + 4, false},
		{Int8Block, 129, 129 + 8, false},
		{NF4Block, 64, 32 + 2, false},
		{NF4Block, 65, 33 + 4, false},
		{Invalid, 1, 0, true},
	}
	for _, tc := range tests {
		got, err := tc.dt.StorageSize(tc.n)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%v.StorageSize(%d) = %d, %v; want %d, error %v", tc.dt, tc.n, got, err, tc.want, tc.err)
		}
	}
}

func TestWebRWKVName(t *testing.T) {
	tests := []struct {
		in, out string
		swap    bool
	}{
		{"blocks.0.att.time_faaaa", "blocks.0.att.time_first", false},
		{"blocks.0.att.time_maa_w1", "blocks.0.att.time_mix_w1", true},
		{"blocks.0.att.time_decay_w2", "blocks.0.att.time_decay_w2", true},
		{"blocks.3.att.key.lora_A", "blocks.3.att.key.lora.0", true},
		{"blocks.3.att.key.lora_B", "blocks.3.att.key.lora.1", false},
		{"blocks.0.att.x_r", "blocks.0.att.x_r", false},
		{"blocks.0.ln1.weight", "blocks.0.ln1.weight", false},
		{"Blocks.0.att.G1", "blocks.0.att.g1", true},
	}
	for _, tc := range tests {
		got, swap := WebRWKVName(tc.in)
		if got != tc.out || swap != tc.swap {
			t.Errorf("WebRWKVName(%q) = %q, %v; want %q, %v", tc.in, got, swap, tc.out, tc.swap)
		}
	}
}

// ToF16 is torch's .half() for every floating-point type: one rounding to
// nearest even (F64 through float32), ±Inf and NaN kept, finite values past
// 65504 (and the rounding boundary 65520) become ±Inf; ConvertToF16 writes
// the same values as bytes.
func TestToF16Rule(t *testing.T) {
	f32 := []float32{1, -2.5, 65504, 65519.99, 65520, -1e6, float32(math.Inf(1)), float32(math.Inf(-1)), 1e-8, float32(math.NaN()), 0.1}
	want := []uint16{0x3c00, 0xc100, 0x7bff, 0x7bff, 0x7c00, 0xfc00, 0x7c00, 0xfc00, 0x0000, 0x7e00, 0x2e66}
	var b32, b64, b16 []byte
	for _, f := range f32 {
		b32 = binary.LittleEndian.AppendUint32(b32, math.Float32bits(f))
		b64 = binary.LittleEndian.AppendUint64(b64, math.Float64bits(float64(f)))
		b16 = binary.LittleEndian.AppendUint16(b16, uint16(math.Float32bits(f)>>16)) // bf16 (truncated)
	}
	for _, c := range []struct {
		d   DType
		src []byte
	}{{F32, b32}, {F64, b64}} {
		got := make([]uint16, len(f32))
		if err := ToF16(got, c.src, c.d); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%v: % x, want % x", c.d, got, want)
		}
		bytes16 := make([]byte, 2*len(f32))
		if err := ConvertToF16(bytes16, c.src, c.d); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if h := binary.LittleEndian.Uint16(bytes16[2*i:]); h != want[i] {
				t.Errorf("%v ConvertToF16 element %d: %#04x, want %#04x", c.d, i, h, want[i])
			}
		}
	}
	got := make([]uint16, len(f32))
	if err := ToF16(got, b16, BF16); err != nil {
		t.Fatal(err)
	}
	for i, h := range got {
		bf := math.Float32frombits(uint32(binary.LittleEndian.Uint16(b16[2*i:])) << 16)
		if h != F32ToF16(bf) {
			t.Errorf("BF16 element %d: %#04x, want %#04x", i, h, F32ToF16(bf))
		}
	}
	if err := ToF16(make([]uint16, 2), make([]byte, 7), F32); err == nil {
		t.Error("ToF16 read past its input")
	}
	if err := ConvertToF16(make([]byte, 4), make([]byte, 8), I32); err == nil {
		t.Error("ConvertToF16 converted I32")
	}
}
