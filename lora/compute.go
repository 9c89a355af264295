package lora

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/rwkvkit/rwkvkit/format"
)

// CPU is the reference [Backend]. Every element's sum is taken in the same
// order, k = 0, 1, …, r−1, each product and sum rounded to float32 (no
// fused multiply-add), so its results do not depend on the machine or on
// how the rows are shared among goroutines.
type CPU struct{}

// AddLowRank implements [Backend].
func (CPU) AddLowRank(w []float32, rows, cols, r int, p, q []float32, s float32) error {
	if err := checkLowRank(w, rows, cols, r, p, q); err != nil {
		return err
	}
	workers := min(runtime.GOMAXPROCS(0), rows)
	if rows*cols*r < 1<<16 {
		workers = 1
	}
	var wg sync.WaitGroup
	for g := range workers {
		lo, hi := rows*g/workers, rows*(g+1)/workers
		wg.Go(func() { addLowRankRows(w, lo, hi, cols, r, p, q, s) })
	}
	wg.Wait()
	return nil
}

func checkLowRank(w []float32, rows, cols, r int, p, q []float32) error {
	if rows < 0 || cols < 0 || r <= 0 || len(w) != rows*cols || len(p) != rows*r || len(q) != cols*r {
		return fmt.Errorf("low-rank product: %d×%d of rank %d with %d, %d and %d values", rows, cols, r, len(w), len(p), len(q))
	}
	return nil
}

func addLowRankRows(w []float32, lo, hi, cols, r int, p, q []float32, s float32) {
	for i := lo; i < hi; i++ {
		pi := p[i*r : (i+1)*r]
		wi := w[i*cols : (i+1)*cols]
		j := 0
		// Four columns at a time: four independent sums, each still in k
		// order, so the additions do not wait on one another.
		for ; j+4 <= cols; j += 4 {
			q0 := q[j*r : (j+1)*r]
			q1 := q[(j+1)*r : (j+2)*r]
			q2 := q[(j+2)*r : (j+3)*r]
			q3 := q[(j+3)*r : (j+4)*r]
			q0, q1, q2, q3 = q0[:len(pi)], q1[:len(pi)], q2[:len(pi)], q3[:len(pi)]
			var d0, d1, d2, d3 float32
			for k, x := range pi {
				d0 += float32(x * q0[k]) // the conversions forbid fusing
				d1 += float32(x * q1[k])
				d2 += float32(x * q2[k])
				d3 += float32(x * q3[k])
			}
			wi[j] += float32(s * d0)
			wi[j+1] += float32(s * d1)
			wi[j+2] += float32(s * d2)
			wi[j+3] += float32(s * d3)
		}
		for ; j < cols; j++ {
			qj := q[j*r : (j+1)*r]
			var d float32
			for k, x := range pi {
				d += float32(x * qj[k])
			}
			wi[j] += float32(s * d)
		}
	}
}

// parallel calls fn on consecutive parts of [0, n), at once on as many
// goroutines as there are processors, each part at least 64Ki long.
func parallel(n int, fn func(lo, hi int)) {
	const least = 1 << 16
	parts := min(runtime.GOMAXPROCS(0), (n+least-1)/least)
	if parts <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for g := range parts {
		wg.Go(func() { fn(n*g/parts, n*(g+1)/parts) })
	}
	wg.Wait()
}

// addScaled sets w += alpha·l.
func addScaled(w, l []float32, alpha float32) {
	for i, x := range l {
		w[i] += float32(alpha * x)
	}
}

// interpolate sets w = alpha·l + (1 − alpha)·w.
func interpolate(w, l []float32, alpha float32) {
	beta := 1 - alpha
	for i, x := range l {
		w[i] = float32(alpha*x) + float32(beta*w[i])
	}
}

// transposeLast2 returns x, a stack of rows×cols matrices, with each matrix
// transposed.
func transposeLast2(x []float32, rows, cols int) []float32 {
	out := make([]float32, len(x))
	mat := rows * cols
	if mat == 0 {
		return out
	}
	for base := 0; base < len(x); base += mat {
		for i := range rows {
			for j := range cols {
				out[base+j*rows+i] = x[base+i*cols+j]
			}
		}
	}
	return out
}

// encode writes w into b as dt (F32, F16 or BF16), rounding each value once
// to nearest even.
func encode(b []byte, w []float32, dt format.DType) {
	switch dt {
	case format.F32:
		for i, x := range w {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
	case format.F16:
		if !littleEndian {
			for i, x := range w {
				binary.LittleEndian.PutUint16(b[2*i:], format.F32ToF16(x))
			}
			return
		}
		// w's memory is little-endian float32 here, what format's cast
		// (vector code where the CPU has it, the same bits) reads.
		if err := format.ConvertToF16(b[:2*len(w)], bytesOf(w), format.F32); err != nil {
			panic("lora: encode: " + err.Error()) // b and w are sized for each other
		}
	case format.BF16:
		for i, x := range w {
			binary.LittleEndian.PutUint16(b[2*i:], f32ToBF16(x))
		}
	default:
		panic("lora: encode " + dt.String()) // Merge admits only the three
	}
}

// littleEndian is whether this machine stores numbers little-endian, so
// that a []float32's bytes are its little-endian encoding.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// f32ToBF16 rounds f to bfloat16, to nearest even, as torch does; a NaN
// stays a quiet NaN of the same sign.
func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
