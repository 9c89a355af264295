package format

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
)

// RWKVKIT_CAST_KERNELS=AVX2 (or another kernel set's name, or "portable")
// makes the test binary, benchmarks included, use those casts instead of
// the fastest ones, to measure what a smaller CPU would run.
func init() {
	name := os.Getenv("RWKVKIT_CAST_KERNELS")
	if name == "" {
		return
	}
	useCastKernels(nil)
	for i, k := range castKernelSets {
		if k.name == name {
			useCastKernels(&castKernelSets[i])
		}
	}
	if name != "portable" && castWhole == nil {
		panic("RWKVKIT_CAST_KERNELS=" + name + ": no such kernels on this CPU")
	}
}

// forEachCastKernels runs f as a subtest for each kernel set this CPU has,
// with ToF16 and ConvertToF16 using it.
func forEachCastKernels(t *testing.T, f func(t *testing.T)) {
	if len(castKernelSets) == 0 {
		t.Skip("no vector casts on this CPU")
	}
	w, wb := castWhole, castWholeBytes
	defer func() { castWhole, castWholeBytes = w, wb }()
	for i, k := range castKernelSets {
		t.Run(k.name, func(t *testing.T) {
			useCastKernels(&castKernelSets[i])
			f(t)
		})
	}
}

// castBoth converts src (elements of d) with ToF16 and ConvertToF16, which
// use the vector kernels, and with the portable code, and fails unless all
// three give the same bits.
func castBoth(t *testing.T, what string, src []byte, d DType) {
	t.Helper()
	n := len(src) / d.Size()
	gold := make([]uint16, n)
	toF16(gold, src, d)
	vec := make([]uint16, n)
	if err := ToF16(vec, src, d); err != nil {
		t.Fatal(err)
	}
	// ConvertToF16 into a buffer at an odd address, so that the kernels'
	// stores are unaligned.
	out := make([]byte, 2*n+1)[1:]
	if err := ConvertToF16(out, src, d); err != nil {
		t.Fatal(err)
	}
	for i := range gold {
		if vec[i] != gold[i] {
			t.Fatalf("%s: %v element %d (%s): ToF16 gives %#04x, portable %#04x", what, d, i, elemHex(src, d, i), vec[i], gold[i])
		}
		if h := binary.LittleEndian.Uint16(out[2*i:]); h != gold[i] {
			t.Fatalf("%s: %v element %d (%s): ConvertToF16 gives %#04x, portable %#04x", what, d, i, elemHex(src, d, i), h, gold[i])
		}
	}
}

func elemHex(src []byte, d DType, i int) string {
	if d == F32 {
		return fmt.Sprintf("%#08x", binary.LittleEndian.Uint32(src[4*i:]))
	}
	return fmt.Sprintf("%#04x", binary.LittleEndian.Uint16(src[2*i:]))
}

// Every bfloat16 bit pattern converts as the portable code converts it, in
// order and shuffled, read from an odd address.
func TestVectorCastAllBF16(t *testing.T) {
	forEachCastKernels(t, func(t *testing.T) {
		all := make([]uint16, 1<<16)
		for i := range all {
			all[i] = uint16(i)
		}
		castBoth(t, "in order", bf16Bytes(all, 1), BF16)
		rand.New(rand.NewPCG(3, 4)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		castBoth(t, "shuffled", bf16Bytes(all, 1), BF16)
	})
}

// bf16Bytes returns vals as little-endian bytes starting off bytes into a
// fresh buffer.
func bf16Bytes(vals []uint16, off int) []byte {
	b := make([]byte, off+2*len(vals))[off:]
	for i, v := range vals {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}

func f32Bytes(vals []uint32, off int) []byte {
	b := make([]byte, off+4*len(vals))[off:]
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// lowPatterns are the low 13 bits of a float32 mantissa, those float16's
// normal numbers drop: zero, below half, exactly half (a tie, which the
// bit above breaks), just above half, and all ones. With every value of
// the 19 bits above them, they reach every float16 result and every case
// of rounding: the round and sticky bits of subnormal results lie in the
// upper 19 bits, with the lower 13 bits zero or not.
var lowPatterns = []uint32{0, 1, 0x0800, 0x0fff, 0x1000, 0x1001, 0x17ff, 0x1fff}

// Float32 edge classes, among 4 Mi values: every sign, exponent (zero,
// float32 subnormals, float16 subnormals, the overflow threshold, ±Inf and
// NaN) and upper mantissa, with the low mantissa bits of lowPatterns, so
// that NaN payloads, round-half-even ties, overflow to Inf and underflow to
// zero all occur.
func TestVectorCastFloat32EdgeClasses(t *testing.T) {
	vals := make([]uint32, 0, len(lowPatterns)<<19)
	for hi := uint32(0); hi < 1<<19; hi++ {
		for _, lo := range lowPatterns {
			vals = append(vals, hi<<13|lo)
		}
	}
	forEachCastKernels(t, func(t *testing.T) {
		castBoth(t, "edge classes", f32Bytes(vals, 3), F32)
	})
}

// Inputs of every length up to a few vector widths, at every byte offset
// within a word, convert alike: the kernels take the whole groups and the
// portable code the rest.
func TestVectorCastTails(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	forEachCastKernels(t, func(t *testing.T) {
		for n := 0; n <= 200; n++ {
			for off := range 4 {
				h := make([]uint16, n)
				w := make([]uint32, n)
				for i := range n {
					h[i], w[i] = uint16(r.Uint32()), r.Uint32()
				}
				castBoth(t, fmt.Sprintf("%d elements at offset %d", n, off), bf16Bytes(h, off), BF16)
				castBoth(t, fmt.Sprintf("%d elements at offset %d", n, off), f32Bytes(w, off), F32)
			}
		}
	})
}

// With RWKVKIT_CAST_ALL_FLOAT32=1, every one of the 2^32 float32 bit
// patterns is converted by each kernel set and compared with the portable
// code (about a minute on two cores).
func TestVectorCastAllFloat32(t *testing.T) {
	if os.Getenv("RWKVKIT_CAST_ALL_FLOAT32") == "" {
		t.Skip("set RWKVKIT_CAST_ALL_FLOAT32=1 to convert all 2^32 float32 values")
	}
	forEachCastKernels(t, func(t *testing.T) {
		const chunk = 1 << 20
		var wg sync.WaitGroup
		next := make(chan uint32)
		for range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				src := make([]byte, 4*chunk)
				gold, vec := make([]uint16, chunk), make([]uint16, chunk)
				for base := range next {
					for i := range uint32(chunk) {
						binary.LittleEndian.PutUint32(src[4*i:], base+i)
					}
					toF16(gold, src, F32)
					if err := ToF16(vec, src, F32); err != nil {
						t.Error(err)
						return
					}
					for i := range gold {
						if vec[i] != gold[i] {
							t.Errorf("float32 %#08x: vector %#04x, portable %#04x", base+uint32(i), vec[i], gold[i])
							return
						}
					}
				}
			}()
		}
		for base := uint64(0); base < 1<<32; base += chunk {
			next <- uint32(base)
		}
		close(next)
		wg.Wait()
	})
}

// BenchmarkConvertToF16 casts 16 Mi elements of bfloat16 and of float32
// (random bits) to float16 on one core; bytes are input bytes.
func BenchmarkConvertToF16(b *testing.B) {
	const n = 16 << 20
	r := rand.New(rand.NewPCG(7, 8))
	for _, d := range []DType{BF16, F32} {
		src := make([]byte, n*d.Size())
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		dst := make([]byte, 2*n)
		b.Run(d.String(), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if err := ConvertToF16(dst, src, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
