package gguf

import (
	"encoding/binary"
	"math"

	"github.com/rwkvkit/rwkvkit/format"
)

// encodeQ8_0 quantizes src (a multiple of 32 values) into Q8_0 blocks as
// ggml's reference quantizer does (quantize_row_q8_0_ref, which the Python
// converter reproduces bit for bit): d = max|x|/127 and q = roundf(x·(1/d))
// in float32, ties away from zero; d is stored as float16.
func encodeQ8_0(dst []byte, src []float32) {
	for ; len(src) >= 32; src, dst = src[32:], dst[34:] {
		var amax float32
		for _, v := range src[:32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(dst, format.F32ToF16(d))
		for j, v := range src[:32] {
			dst[2+j] = byte(int8(math.Round(float64(float32(v * id)))))
		}
	}
}
