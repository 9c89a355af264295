package gguf

import (
	"encoding/binary"
	"fmt"

	"github.com/rwkvkit/rwkvkit/format"
)

// The block layouts and the arithmetic of ggml-quants.c (dequantize_row_*),
// step for step in float32: an int converted to float, then each product
// and sum rounded on its own (the explicit float32 conversions keep the
// compiler from fusing a product with the following sum, which the C code,
// built for plain x86-64, does not do either).

func half(b []byte) float32 { return format.F16ToF32(binary.LittleEndian.Uint16(b)) }

// decodeQ4_0: {d f16; qs [16]u8}; element j is the low nibble of qs[j],
// element j+16 the high one; w = (q − 8)·d.
func decodeQ4_0(dst []float32, src []byte) {
	for ; len(src) >= 18; src, dst = src[18:], dst[32:] {
		d, qs := half(src), src[2:18]
		for j := range 16 {
			dst[j] = float32(int(qs[j]&0xF)-8) * d
			dst[j+16] = float32(int(qs[j]>>4)-8) * d
		}
	}
}

// decodeQ4_1: {d, m f16; qs [16]u8}; w = q·d + m.
func decodeQ4_1(dst []float32, src []byte) {
	for ; len(src) >= 20; src, dst = src[20:], dst[32:] {
		d, m, qs := half(src), half(src[2:]), src[4:20]
		for j := range 16 {
			dst[j] = float32(float32(qs[j]&0xF)*d) + m
			dst[j+16] = float32(float32(qs[j]>>4)*d) + m
		}
	}
}

// decodeQ5_0: {d f16; qh u32; qs [16]u8}; bit j of qh is the fifth bit of
// element j, bit j+16 that of element j+16; w = (q − 16)·d.
func decodeQ5_0(dst []float32, src []byte) {
	for ; len(src) >= 22; src, dst = src[22:], dst[32:] {
		d, qh, qs := half(src), binary.LittleEndian.Uint32(src[2:]), src[6:22]
		for j := range 16 {
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			dst[j] = float32(int(qs[j]&0xF|h0)-16) * d
			dst[j+16] = float32(int(qs[j]>>4|h1)-16) * d
		}
	}
}

// decodeQ5_1: {d, m f16; qh u32; qs [16]u8}; w = q·d + m.
func decodeQ5_1(dst []float32, src []byte) {
	for ; len(src) >= 24; src, dst = src[24:], dst[32:] {
		d, m, qh, qs := half(src), half(src[2:]), binary.LittleEndian.Uint32(src[4:]), src[8:24]
		for j := range 16 {
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			dst[j] = float32(float32(qs[j]&0xF|h0)*d) + m
			dst[j+16] = float32(float32(qs[j]>>4|h1)*d) + m
		}
	}
}

// decodeQ8_0: {d f16; qs [32]i8}; w = q·d.
func decodeQ8_0(dst []float32, src []byte) {
	for ; len(src) >= 34; src, dst = src[34:], dst[32:] {
		d := half(src)
		for j, q := range src[2:34] {
			dst[j] = float32(int8(q)) * d
		}
	}
}

// scaleMinK4 unpacks the j-th 6-bit scale and min of a Q4_K/Q5_K block
// (get_scale_min_k4).
func scaleMinK4(j int, q []byte) (sc, m float32) {
	if j < 4 {
		return float32(q[j] & 63), float32(q[j+4] & 63)
	}
	return float32(q[j+4]&0xF | q[j-4]>>6<<4), float32(q[j+4]>>4 | q[j]>>6<<4)
}

// decodeQ4_K: {d, dmin f16; scales [12]u8; qs [128]u8}: eight sub-blocks of
// 32 with 6-bit scales and mins; w = d·sc·q − dmin·m.
func decodeQ4_K(dst []float32, src []byte) {
	for ; len(src) >= 144; src, dst = src[144:], dst[qk:] {
		d, dmin, scales, q := half(src), half(src[2:]), src[4:16], src[16:144]
		y := dst
		for j := 0; j < qk/64; j++ {
			s1, m1 := scaleMinK4(2*j, scales)
			s2, m2 := scaleMinK4(2*j+1, scales)
			d1, mm1 := d*s1, dmin*m1
			d2, mm2 := d*s2, dmin*m2
			for l := range 32 {
				y[l] = float32(d1*float32(q[l]&0xF)) - mm1
				y[l+32] = float32(d2*float32(q[l]>>4)) - mm2
			}
			y, q = y[64:], q[32:]
		}
	}
}

// decodeQ5_K: {d, dmin f16; scales [12]u8; qh [32]u8; qs [128]u8}: as Q4_K
// with a fifth bit per element in qh.
func decodeQ5_K(dst []float32, src []byte) {
	for ; len(src) >= 176; src, dst = src[176:], dst[qk:] {
		d, dmin, scales, qh, ql := half(src), half(src[2:]), src[4:16], src[16:48], src[48:176]
		y := dst
		u1, u2 := byte(1), byte(2)
		for j := 0; j < qk/64; j++ {
			s1, m1 := scaleMinK4(2*j, scales)
			s2, m2 := scaleMinK4(2*j+1, scales)
			d1, mm1 := d*s1, dmin*m1
			d2, mm2 := d*s2, dmin*m2
			for l := range 32 {
				lo, hi := ql[l]&0xF, ql[l]>>4
				if qh[l]&u1 != 0 {
					lo += 16
				}
				if qh[l]&u2 != 0 {
					hi += 16
				}
				y[l] = float32(d1*float32(lo)) - mm1
				y[l+32] = float32(d2*float32(hi)) - mm2
			}
			y, ql = y[64:], ql[32:]
			u1, u2 = u1<<2, u2<<2
		}
	}
}

// decodeQ6_K: {ql [128]u8; qh [64]u8; scales [16]i8; d f16}: sixteen
// sub-blocks of 16 with 8-bit scales; w = d·sc·(q − 32).
func decodeQ6_K(dst []float32, src []byte) {
	for ; len(src) >= 210; src, dst = src[210:], dst[qk:] {
		ql, qh, sc, d := src[:128], src[128:192], src[192:208], half(src[208:])
		y := dst
		for n := 0; n < qk/128; n++ {
			for l := range 32 {
				is := l / 16
				q1 := int8(ql[l]&0xF|(qh[l]>>0&3)<<4) - 32
				q2 := int8(ql[l+32]&0xF|(qh[l]>>2&3)<<4) - 32
				q3 := int8(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int8(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				y[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				y[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				y[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				y[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
			y, ql, qh, sc = y[128:], ql[64:], qh[32:], sc[8:]
		}
	}
}

// decodeRow widens len(dst) elements of type t stored in src to float32.
func decodeRow(dst []float32, src []byte, t Type) error {
	ti, ok := types[t]
	if !ok || len(dst)%ti.blockLen != 0 || len(src) != len(dst)/ti.blockLen*ti.blockBytes {
		return fmt.Errorf("gguf: %d bytes of %v for %d elements", len(src), t, len(dst))
	}
	switch t {
	case TypeF32:
		return format.DecodeFloat32(dst, src, format.F32)
	case TypeF16:
		return format.DecodeFloat32(dst, src, format.F16)
	case TypeBF16:
		return format.DecodeFloat32(dst, src, format.BF16)
	}
	if ti.decode == nil {
		return fmt.Errorf("%w %v", ErrUnsupported, t)
	}
	ti.decode(dst, src)
	return nil
}

// decodeQ2_K: {scales [16]u8; qs [64]u8; d, dmin f16}: sixteen sub-blocks
// of 16 with 4-bit scale and min; w = d·sc·q − dmin·m.
func decodeQ2_K(dst []float32, src []byte) {
	for ; len(src) >= 84; src, dst = src[84:], dst[qk:] {
		scales, q, d, dmin := src[:16], src[16:80], half(src[80:]), half(src[82:])
		y, is := dst, 0
		for n := 0; n < qk/128; n++ {
			for shift := 0; shift < 8; shift += 2 {
				for h := range 2 {
					sc := scales[is]
					is++
					dl, ml := d*float32(sc&0xF), dmin*float32(sc>>4)
					for l := range 16 {
						y[l] = float32(dl*float32(q[l+16*h]>>shift&3)) - ml
					}
					y = y[16:]
				}
			}
			q = q[32:]
		}
	}
}

// decodeQ3_K: {hmask [32]u8; qs [64]u8; scales [12]u8; d f16}: sixteen
// sub-blocks of 16 with 6-bit signed scales; w = d·(sc − 32)·(q − 4·(1 − h)).
func decodeQ3_K(dst []float32, src []byte) {
	for ; len(src) >= 110; src, dst = src[110:], dst[qk:] {
		hm, q, packed, d := src[:32], src[32:96], src[96:108], half(src[108:])
		// The 16 scales: low 4 bits from the first 8 bytes, high 2 from the last 4.
		var scales [16]int
		for j := range 16 {
			lo := packed[j%8] >> (4 * (j / 8)) & 0xF
			hi := packed[8+j%4] >> (2 * (j / 4)) & 3
			scales[j] = int(lo|hi<<4) - 32
		}
		y, is, m := dst, 0, byte(1)
		for n := 0; n < qk/128; n++ {
			for shift := 0; shift < 8; shift += 2 {
				for h := range 2 {
					dl := d * float32(scales[is])
					is++
					for l := range 16 {
						v := int(q[l+16*h] >> shift & 3)
						if hm[l+16*h]&m == 0 {
							v -= 4
						}
						y[l] = dl * float32(v)
					}
					y = y[16:]
				}
				m <<= 1
			}
			q = q[32:]
		}
	}
}
