// Package quantize turns float16 weight matrices into web-rwkv's block
// formats, Int8 ([format.Int8Block], blocks of 128), NF4
// ([format.NF4Block], blocks of 64) and SF4 ([format.SF4Block]: NF4's
// layout and arithmetic with a table of Student-t quantiles, [SF4Table]),
// on the CPU or on a GPU, with results
// that are identical to the bit on both; it also decides which tensors of a
// model are quantized ([Plan]) and wraps a whole model lazily ([Apply]).
//
// # Storage
//
// One payload per tensor. Blocks are consecutive runs of the flat row-major
// data; the last block may be shorter. Int8: n one-byte codes, then per block
// a float16 (min, max) pair. NF4: ceil(n/2) bytes of 4-bit codes (element 2i
// in the low nibble, 2i+1 in the high one; the unused high nibble of an odd
// count is 0), then per block a float16 absmax. This is web-rwkv's layout,
// and dequantization is web-rwkv's: Int8 w = min + (max−min)·q/255, NF4
// w = table[code]·absmax.
//
// # Arithmetic
//
// The input is float16 (tensors of other float types are rounded to float16
// first, to nearest even, as web-rwkv, which loads float16 only, sees them).
// ±Inf and NaN are refused with an error naming the element. −0 counts as +0.
// Because the inputs are float16, a block's min, max and absmax are input
// values and are stored exactly. Every step below is one IEEE-754 float32
// operation rounded to nearest even; there is no division per element and no
// multiply followed by an add, so a GPU compiler that fuses a·b+c into FMA,
// or divides approximately, cannot change a result.
//
// Int8, per block with smallest value min and largest max:
//
//	R = max − min                      (float32)
//	s = 255 / R, or 0 when R = 0        (float32, correctly rounded)
//	q = roundHalfEven((v − min) · s)    (v − min, then · s, each float32)
//
// q is always in [0, 255] (R·s ≤ 255·(1+2⁻²⁴)). When max = min every q is 0.
// web-rwkv computes round-half-up(255·((v−min)/(max−min))) instead; the two
// differ only for values within a float32 rounding of a half-step.
//
// NF4, per block with a = max|v|, and the 16 float32 table values t₀…t₁₅ of
// QLoRA/bitsandbytes NF4 ([NF4Table]):
//
//	m_k = (t_k + t_{k+1}) / 2           (float32, k = 0…14; [NF4Midpoints])
//	T_k = m_k · a                       (float32)
//	code = number of k with v ≥ T_k
//
// that is, the table value nearest to v/a, ties going to the higher index,
// decided without dividing. When a = 0 (the block is all zeros) every code is
// 7, the table's 0. SF4 is the same with [SF4Table] and [SF4Midpoints]
// (its 0 is at index 7 too).
//
// On the GPU, float16 bits are widened without the hardware half-float
// conversion, whose rounding and denormal handling vary: normal values by
// integer operations on the bits, subnormals as an exact integer-to-float
// conversion times 2⁻²⁴. Int8's min and max are reduced on integer keys and
// 255/R is divided in integers. NF4 turns each block's thresholds T_k once
// into float16 keys, which compare with the float16 inputs exactly as
// v ≥ T_k does (every input is a float16, so the smallest float16 at or
// above T_k separates the same values). So the kernels reproduce the float32
// steps above exactly on any conforming Vulkan device (float32 add and
// multiply are correctly rounded in Vulkan).
package quantize
