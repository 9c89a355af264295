package quantize

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rwkvkit/rwkvkit/format"
)

// NF4Table is the 4-bit NormalFloat code book of QLoRA (bitsandbytes'
// create_normal_map), as float32.
var NF4Table = [16]float32{
	-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
	0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
}

// NF4Midpoints are the decision thresholds between neighbouring NF4Table
// values, (t_k + t_{k+1})/2 in float32.
var NF4Midpoints = midpoints(&NF4Table)

// A codebook is what encoding and decoding one 4-bit absmax kind (NF4,
// SF4) needs: its table, its midpoints padded to sixteen for the vector
// kernels, and the bucket table of fourBitCode.
type codebook struct {
	table  *[16]float32
	mids   [16]float32
	bucket [512]uint8
}

func newCodebook(t *[16]float32) *codebook {
	cb := &codebook{table: t}
	m := midpoints(t)
	copy(cb.mids[:], m[:])
	cb.bucket = buckets(&m)
	return cb
}

var nf4Book, sf4Book = newCodebook(&NF4Table), newCodebook(&SF4Table)

// bookOf returns the codebook of a 4-bit kind, or nil.
func bookOf(kind format.DType) *codebook {
	switch kind {
	case format.NF4Block:
		return nf4Book
	case format.SF4Block:
		return sf4Book
	}
	return nil
}

// ErrNotFinite is wrapped by errors about ±Inf or NaN input.
var ErrNotFinite = errors.New("value is not finite")

// ErrOutOfRange is wrapped by errors about values too large for float16.
var ErrOutOfRange = errors.New("value exceeds the float16 range")

// A ValueError reports the first element that cannot be quantized.
type ValueError struct {
	Index int64   // element index in the flat data
	Value float64 // the offending value
	Err   error   // ErrNotFinite or ErrOutOfRange
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("element %d is %v: %v", e.Index, e.Value, e.Err)
}

func (e *ValueError) Unwrap() error { return e.Err }

func notFinite(i int64, h uint16) error {
	return &ValueError{Index: i, Value: float64(format.F16ToF32(h)), Err: ErrNotFinite}
}

// BlockSize returns the block length of a quantized kind.
func BlockSize(kind format.DType) (int, error) {
	switch kind {
	case format.Int8Block:
		return format.Int8BlockSize, nil
	case format.NF4Block, format.SF4Block:
		return format.NF4BlockSize, nil
	}
	return 0, fmt.Errorf("quantize: %v is not a quantized kind", kind)
}

// layout gives where the codes and the block parameters of n elements lie.
type layout struct {
	n, blocks  int
	codeBytes  int // Int8: n; NF4, SF4: ceil(n/2)
	paramBytes int // per block: Int8 4, NF4 and SF4 2
	size       int
}

func layoutOf(kind format.DType, n int) (layout, error) {
	bs, err := BlockSize(kind)
	if err != nil {
		return layout{}, err
	}
	size, err := kind.StorageSize(int64(n))
	if err != nil || size > math.MaxInt {
		return layout{}, fmt.Errorf("quantize: %d elements: storage size overflows", n)
	}
	l := layout{n: n, blocks: (n + bs - 1) / bs, size: int(size)}
	if kind == format.Int8Block {
		l.codeBytes, l.paramBytes = n, 4
	} else {
		l.codeBytes, l.paramBytes = (n+1)/2, 2
	}
	return l, nil
}

// Encode quantizes the float16 values src (their bits) to kind and returns
// the storage bytes, using all cores.
func Encode(kind format.DType, src []uint16) ([]byte, error) {
	l, err := layoutOf(kind, len(src))
	if err != nil {
		return nil, err
	}
	dst := make([]byte, l.size)
	return dst, encode(dst, kind, src, l, 0)
}

// EncodeTo is Encode into dst, which must be exactly kind's storage size
// for len(src) elements.
func EncodeTo(dst []byte, kind format.DType, src []uint16) error {
	l, err := layoutOf(kind, len(src))
	if err != nil {
		return err
	}
	if len(dst) != l.size {
		return fmt.Errorf("quantize: %d bytes for %d elements of %v, want %d", len(dst), len(src), kind, l.size)
	}
	return encode(dst, kind, src, l, 0)
}

func encode(dst []byte, kind format.DType, src []uint16, l layout, workers int) error {
	codes, params := dst[:l.codeBytes], dst[l.codeBytes:]
	bs := format.Int8BlockSize
	book := bookOf(kind)
	if book != nil {
		bs = format.NF4BlockSize
	}
	// Bytes per block of codes and of parameters.
	whole, cb, pb := int8Whole, bs, 4
	if book != nil {
		cb, pb = bs/2, 2
		whole = nil
		if nf4Whole != nil {
			whole = func(codes, params []byte, src []uint16) int { return nf4Whole(codes, params, src, &book.mids) }
		}
	}
	return parallelBlocks(l.blocks, workers, func(b0, b1 int) error {
		b := b0
		if end := min(b1, len(src)/bs); whole != nil && end > b {
			// It stops before a block with a non-finite value, which the
			// loop below reports.
			b += whole(codes[cb*b:cb*end], params[pb*b:pb*end], src[bs*b:bs*end])
		}
		for ; b < b1; b++ {
			lo, hi := b*bs, min((b+1)*bs, len(src))
			var bad int
			if kind == format.Int8Block {
				bad = int8Block(codes[lo:hi], params[4*b:4*b+4], src[lo:hi])
			} else {
				bad = fourBitBlock(book, codes[lo/2:(hi+1)/2], params[2*b:2*b+2], src[lo:hi])
			}
			if bad >= 0 {
				return notFinite(int64(lo+bad), src[lo+bad])
			}
		}
		return nil
	})
}

// Decode dequantizes storage bytes src of kind into dst (len(dst) elements).
func Decode(dst []float32, kind format.DType, src []byte) error {
	l, err := layoutOf(kind, len(dst))
	if err != nil {
		return err
	}
	if len(src) != l.size {
		return fmt.Errorf("quantize: %d bytes for %d elements of %v, want %d", len(src), len(dst), kind, l.size)
	}
	codes, params := src[:l.codeBytes], src[l.codeBytes:]
	return parallelBlocks(l.blocks, 0, func(b0, b1 int) error {
		for b := b0; b < b1; b++ {
			if kind == format.Int8Block {
				lo, hi := b*format.Int8BlockSize, min((b+1)*format.Int8BlockSize, len(dst))
				decodeInt8Block(dst[lo:hi], codes[lo:hi], params[4*b:])
			} else {
				lo, hi := b*format.NF4BlockSize, min((b+1)*format.NF4BlockSize, len(dst))
				decodeFourBitBlock(bookOf(kind).table, dst[lo:hi], codes[lo/2:], params[2*b:])
			}
		}
		return nil
	})
}

// int8Whole and nf4Whole, where the CPU has a vector kernel
// (codec_amd64.go), quantize the leading whole blocks of src exactly as
// int8Block and fourBitBlock (with the codebook whose midpoints mids are)
// do, and return how many they did: they stop before a block that holds
// ±Inf or NaN.
var (
	int8Whole func(codes, params []byte, src []uint16) int
	nf4Whole  func(codes, params []byte, src []uint16, mids *[16]float32) int
)

// workBlocks is the number of blocks one worker takes at a time: large
// enough to amortise scheduling, small enough to balance the cores.
const workBlocks = 2048

// parallelBlocks runs fn over [0, n) in ranges of workBlocks on up to
// workers goroutines (0: GOMAXPROCS). Of the errors, the one of the lowest
// range is returned, so the first bad element is reported whatever the
// scheduling.
func parallelBlocks(n, workers int, fn func(b0, b1 int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	pieces := (n + workBlocks - 1) / workBlocks
	workers = min(workers, pieces)
	if workers <= 1 {
		return fn(0, n)
	}
	var next atomic.Int64
	var mu sync.Mutex
	firstBad, firstErr := pieces, error(nil)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p := int(next.Add(1) - 1)
				if p >= pieces {
					return
				}
				mu.Lock()
				stop := p > firstBad
				mu.Unlock()
				if stop {
					return
				}
				if err := fn(p*workBlocks, min((p+1)*workBlocks, n)); err != nil {
					mu.Lock()
					if p < firstBad {
						firstBad, firstErr = p, err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// key maps float16 bits to an int32 that orders like the value; −0 sorts
// just below +0, and canon folds it back.
func key(h uint16) int32 {
	x := int32(int16(h))
	return x ^ (x >> 31 & 0x7FFF)
}

// unkey is the inverse of key.
func unkey(k int32) uint16 { return uint16(k ^ (k >> 31 & 0x7FFF)) }

// canon turns −0 into +0.
func canon(h uint16) uint16 {
	if h == 0x8000 {
		return 0
	}
	return h
}

// Keys of the smallest +Inf and the largest −Inf: finite keys lie strictly
// between.
const (
	keyPosInf = 0x7C00
	keyNegInf = -0x7C01
)

func firstNonFinite(src []uint16) int {
	for i, h := range src {
		if h&0x7C00 == 0x7C00 {
			return i
		}
	}
	return -1
}

// f16 widens float16 bits (a copy of format's table, held in a register
// in the loops below).
var f16 = func() *[65536]float32 {
	var t [65536]float32
	for i := range t {
		t[i] = format.F16ToF32(uint16(i))
	}
	return &t
}()

// magic is 2²³: for 0 ≤ t < 2²², t + magic rounds t to an integer (half to
// even) in the low mantissa bits.
const magic = 0x1p23

// int8Block quantizes one block (len(src) ≤ 128) and returns the index of
// its first non-finite value, or −1.
func int8Block(codes, param []byte, src []uint16) int {
	lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
	lo2, hi2 := lo, hi
	i := 0
	for ; i+1 < len(src); i += 2 {
		k, k2 := key(src[i]), key(src[i+1])
		lo, hi = min(lo, k), max(hi, k)
		lo2, hi2 = min(lo2, k2), max(hi2, k2)
	}
	if i < len(src) {
		k := key(src[i])
		lo, hi = min(lo, k), max(hi, k)
	}
	lo, hi = min(lo, lo2), max(hi, hi2)
	if hi >= keyPosInf || lo <= keyNegInf {
		return firstNonFinite(src)
	}
	minH, maxH := canon(unkey(lo)), canon(unkey(hi))
	param[0], param[1], param[2], param[3] = byte(minH), byte(minH>>8), byte(maxH), byte(maxH>>8)
	mn := format.F16ToF32(minH)
	r := format.F16ToF32(maxH) - mn
	var s float32
	if r != 0 {
		s = 255 / r
	}
	codes = codes[:len(src)]
	tab := f16
	for i, h := range src {
		// The conversion to float32 keeps the product from being fused
		// with the following addition.
		t := float32((tab[h] - mn) * s)
		codes[i] = byte(math.Float32bits(t + magic))
	}
	return -1
}

// buckets(m)[b] counts the midpoints m below the window of x = v/absmax
// values that can land in bucket b = ⌊(x+1)·128⌋ when x is computed with
// float32 rounding: the bucket may be off by one, so the window is
// [(b−1)/128 − 1, (b+2)/128 − 1). Midpoints are at least 0.066 apart (NF4
// 0.08, SF4 0.066), more than the window's 3/128, so at most one midpoint,
// the next one, can lie in it, and one comparison with that threshold
// finishes the count exactly.
// Since |v| ≤ absmax, b lies in 0…256 (x+1 may round just above 2); the
// table is 512 long so that masking the index proves it in range.
func buckets(mids *[15]float32) (lut [512]uint8) {
	for b := range lut {
		edge := float64(b-1)/128 - 1 - 1e-4 // margin for T_k/a ≠ m_k by rounding
		for _, m := range mids {
			if float64(m) < edge {
				lut[b]++
			}
		}
	}
	return lut
}

// fourBitBlock quantizes one block (len(src) ≤ 64) to the codebook cb in
// ceil(len/2) code bytes and returns the index of its first non-finite
// value, or −1.
func fourBitBlock(cb *codebook, codes, param []byte, src []uint16) int {
	var amax uint16
	for _, h := range src {
		amax = max(amax, h&0x7FFF)
	}
	if amax >= 0x7C00 {
		return firstNonFinite(src)
	}
	param[0], param[1] = byte(amax), byte(amax>>8)
	codes = codes[:(len(src)+1)/2]
	if amax == 0 {
		for i := range codes {
			codes[i] = 0x77
		}
		if len(src)%2 == 1 {
			codes[len(codes)-1] = 0x07
		}
		return -1
	}
	a := format.F16ToF32(amax)
	var t [16]float32
	for k, m := range cb.mids[:15] {
		t[k] = m * a
	}
	t[15] = float32(math.Inf(1))
	s := 128 / a
	tab, lut := f16, &cb.bucket
	for i := 0; i+1 < len(src); i += 2 {
		codes[i/2] = fourBitCode(lut, &t, s, tab[src[i]]) | fourBitCode(lut, &t, s, tab[src[i+1]])<<4
	}
	if len(src)%2 == 1 {
		codes[len(codes)-1] = fourBitCode(lut, &t, s, tab[src[len(src)-1]])
	}
	return -1
}

// fourBitCode counts the thresholds t[0..14] that v reaches; s ≈ 128/absmax.
func fourBitCode(lut *[512]uint8, t *[16]float32, s, v float32) byte {
	c := lut[int32(float32(v*s)+128)&511]
	var up byte
	if v >= t[c&15] {
		up = 1
	}
	return c + up
}

func decodeInt8Block(dst []float32, codes, param []byte) {
	mn := format.F16ToF32(uint16(param[0]) | uint16(param[1])<<8)
	mx := format.F16ToF32(uint16(param[2]) | uint16(param[3])<<8)
	r := mx - mn
	codes = codes[:len(dst)]
	for i, q := range codes {
		dst[i] = float32(float32(r*float32(q))/255) + mn
	}
}

func decodeFourBitBlock(table *[16]float32, dst []float32, codes, param []byte) {
	a := format.F16ToF32(uint16(param[0]) | uint16(param[1])<<8)
	for i := range dst {
		c := codes[i/2] >> (4 * (i & 1)) & 15
		dst[i] = table[c] * a
	}
}
