package runner

import (
	"sync"

	"github.com/rwkvkit/rwkvkit/internal/x86"
)

// Assembly kernels for x86-64 CPUs with AVX2, FMA and F16C (Intel Haswell,
// AMD Zen and later), and an AVX-512 matrix-matrix kernel where AVX-512F is
// available. Each is a plain loop over a multiple of the vector width; the Go
// wrappers below handle the edges and check bounds before passing pointers.

//go:noescape
func rowsF32AVX2(w *float32, ldw int, x *float32, k int, out *float32, n int)

//go:noescape
func rowsF16AVX2(w *uint16, ldw int, x *float32, k int, out *float32, n int)

//go:noescape
func rowsF16AVX512(w *uint16, ldw int, x *float32, k int, out *float32, n int)

//go:noescape
func rowsBF16AVX2(w *uint16, ldw int, x *float32, k int, out *float32, n int)

//go:noescape
func gemm4x3F32AVX2(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int, acc int)

//go:noescape
func gemm4x6F32AVX512(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int, acc int)

//go:noescape
func widenF16AVX2(dst *float32, src *uint16, n int)

//go:noescape
func widenBF16AVX2(dst *float32, src *uint16, n int)

//go:noescape
func sumF32AVX2(x *float32, n int) float32

//go:noescape
func expAVX2(dst, src *float32, n int)

//go:noescape
func sigmoidAVX2(dst, src *float32, n int)

//go:noescape
func reluSquareAVX2(x *float32, n int)

//go:noescape
func int8RowsAVX2(q *uint8, ldq int, x *float32, k int, scale *float32, out *float32, n int)

//go:noescape
func nf4RowsAVX2(codes *uint8, ldc int, xp *float32, k int, absmax *float32, out *float32, n int)

//go:noescape
func wkv7HeadAVX2(S *float32, n int, r, w, k, v, nkk, kka, y *float32)

// The kernels need FMA and F16C besides AVX2; the AVX-512 ones AVX-512F.
var (
	hasAVX2   = x86.AVX2 && x86.FMA
	hasAVX512 = hasAVX2 && x86.AVX512F
)

func init() { useAssembly(hasAVX2, hasAVX512) }

// useAssembly switches the kernels between assembly and portable Go (tests
// run both).
func useAssembly(avx2, avx512 bool) {
	if !avx2 {
		dotRowsF32, dotRowsF16, dotRowsBF16 = dotRowsF32Go, dotRowsF16Go, dotRowsBF16Go
		gemmF32, widenF16, widenBF16, sumF32 = gemmF32Go, widenF16Go, widenBF16Go, sumF32Go
		wkv7Head, expVec, sigmoidVec, reluSquare = wkv7HeadGo, expVecGo, sigmoidVecGo, reluSquareGo
		int8Rows, nf4Rows = nil, nil
		return
	}
	int8Rows, nf4Rows = int8RowsAVX2Go, nf4RowsAVX2Go
	wkv7Head, expVec, sigmoidVec, reluSquare = wkv7HeadAVX2Go, expVecAVX2, sigmoidVecAVX2, reluSquareAVX2Go
	dotRowsF32, dotRowsF16, dotRowsBF16 = dotRowsF32AVX2, dotRowsF16AVX2, dotRowsBF16AVX2
	gemmF32, widenF16, widenBF16, sumF32 = gemmF32AVX2, widenF16AVX2Go, widenBF16AVX2Go, sumF32AVX2Go
	if avx512 {
		gemmF32, dotRowsF16 = gemmF32AVX512, dotRowsF16AVX512
	}
}

// rowsKernel wraps an assembly row kernel (out[i] = row i of w · x over
// the first k − k mod 8 columns) as a dotRows function: it checks the
// bounds the kernel relies on before handing it pointers, and adds the
// leftover columns with dot; slow takes the shapes the kernel cannot.
func rowsKernel[W float32 | uint16](kernel func(w *W, ldw int, x *float32, k int, out *float32, n int),
	dot func(w []W, x []float32) float32, slow func(out []float32, w []W, ldw int, x []float32, k int)) func(out []float32, w []W, ldw int, x []float32, k int) {
	return func(out []float32, w []W, ldw int, x []float32, k int) {
		n, kv := len(out), k&^7
		if n == 0 || kv == 0 {
			slow(out, w, ldw, x, k)
			return
		}
		_, _ = w[(n-1)*ldw+k-1], x[k-1]
		kernel(&w[0], ldw, &x[0], kv, &out[0], n)
		if kv < k {
			for i := range out {
				out[i] += dot(w[i*ldw+kv:i*ldw+k], x[kv:k])
			}
		}
	}
}

var (
	dotRowsF32AVX2   = rowsKernel(rowsF32AVX2, dotGo, dotRowsF32Go)
	dotRowsF16AVX2   = rowsKernel(rowsF16AVX2, dotF16Go, dotRowsF16Go)
	dotRowsF16AVX512 = rowsKernel(rowsF16AVX512, dotF16Go, dotRowsF16Go)
	dotRowsBF16AVX2  = rowsKernel(rowsBF16AVX2, dotBF16Go, dotRowsBF16Go)
)

// Leftover tokens go through the tiles too, padded with zero tokens, so
// that a token's logits do not depend on how many tokens share its pass: a
// dot kernel over the whole row would sum in another order than a tile's
// passes of kBlock columns (and on AVX2 with other accumulators).
func gemmF32AVX2(out []float32, ldo int, w []float32, ldw, rows int, x []float32, ldx, T, k int) {
	gemmBlocked(out, ldo, w, ldw, rows, x, ldx, T, k, 8, 3, gemm4x3F32AVX2)
}

func gemmF32AVX512(out []float32, ldo int, w []float32, ldw, rows int, x []float32, ldx, T, k int) {
	gemmBlocked(out, ldo, w, ldw, rows, x, ldx, T, k, 16, 6, gemm4x6F32AVX512)
}

// padPool holds the padded inputs and outputs of leftover tokens.
var padPool = sync.Pool{New: func() any { return new([]float32) }}

// kBlock is the depth of one pass of gemmBlocked: 6 input rows of this many
// floats stay in L1 while the weight tile passes (measured on AMD Zen 5 at
// k = 3072: 512 gives 102, 768 gives 107, one pass 67 GMAC/s per core).
const kBlock = kBlockGo

// gemmBlocked covers the product with kernel calls of 4 rows × tt tokens
// over the first kv = k − k mod width columns, in passes of at most kBlock
// columns (later passes add to out). Tokens are the outer loop, so that tt
// input rows stay in L1 while the weight tile (sized for L2 by the caller)
// passes. Leftover tokens go through the kernel as a tile of their own,
// padded with zero tokens; leftover rows and columns are added in Go.
func gemmBlocked(out []float32, ldo int, w []float32, ldw, rows int, x []float32, ldx, T, k, width, tt int,
	kernel func(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int, acc int)) {
	kv := k &^ (width - 1)
	r4 := rows &^ 3
	if kv == 0 || r4 == 0 || T == 0 {
		gemmF32Go(out, ldo, w, ldw, rows, x, ldx, T, k)
		return
	}
	_, _, _ = w[(rows-1)*ldw+k-1], x[(T-1)*ldx+k-1], out[(T-1)*ldo+rows-1]
	tfull := T - T%tt
	// px: the leftover tokens' inputs, then zeros, tt rows of kv; po: their
	// outputs, tt rows of r4.
	var px, po []float32
	if tfull < T {
		buf := padPool.Get().(*[]float32)
		defer padPool.Put(buf)
		if n := tt * (kv + r4); cap(*buf) < n {
			*buf = make([]float32, n)
		}
		px, po = (*buf)[:tt*kv], (*buf)[tt*kv:tt*(kv+r4)]
		clear(px)
		for t := tfull; t < T; t++ {
			copy(px[(t-tfull)*kv:(t-tfull+1)*kv], x[t*ldx:t*ldx+kv])
		}
	}
	for kb := 0; kb < kv; kb += kBlock {
		kn := min(kBlock, kv-kb)
		acc := min(kb, 1)
		for t := 0; t < tfull; t += tt {
			for r := 0; r < r4; r += 4 {
				kernel(&w[r*ldw+kb], ldw, &x[t*ldx+kb], ldx, kn, &out[t*ldo+r], ldo, acc)
			}
		}
		if px != nil {
			for r := 0; r < r4; r += 4 {
				kernel(&w[r*ldw+kb], ldw, &px[kb], kv, kn, &po[r], r4, acc)
			}
		}
	}
	for t := tfull; t < T; t++ {
		copy(out[t*ldo:t*ldo+r4], po[(t-tfull)*r4:(t-tfull+1)*r4])
	}
	for t := range T {
		xt := x[t*ldx : t*ldx+k]
		if kv < k {
			for r := range r4 {
				out[t*ldo+r] += dotGo(w[r*ldw+kv:r*ldw+k], xt[kv:])
			}
		}
		for r := r4; r < rows; r++ {
			out[t*ldo+r] = dotGo(w[r*ldw:r*ldw+k], xt)
		}
	}
}

// vecKernel wraps an assembly element-wise kernel (dst[i] = f(src[i]) for
// a multiple of 8 elements) as a function of slices: it checks the bounds
// the kernel relies on and leaves the rest to tail.
func vecKernel[S float32 | uint16](kernel func(dst *float32, src *S, n int), tail func(dst []float32, src []S)) func(dst []float32, src []S) {
	return func(dst []float32, src []S) {
		n := len(dst) &^ 7
		if n > 0 {
			_ = src[len(dst)-1]
			kernel(&dst[0], &src[0], n)
		}
		tail(dst[n:], src[n:len(dst)])
	}
}

var (
	widenF16AVX2Go  = vecKernel(widenF16AVX2, widenF16Go)
	widenBF16AVX2Go = vecKernel(widenBF16AVX2, widenBF16Go)
	expVecAVX2      = vecKernel(expAVX2, expVecGo)
	sigmoidVecAVX2  = vecKernel(sigmoidAVX2, sigmoidVecGo)
)

func sumF32AVX2Go(x []float32) float32 {
	n := len(x) &^ 31
	var s float32
	if n > 0 {
		s = sumF32AVX2(&x[0], n)
	}
	return s + sumF32Go(x[n:])
}

func wkv7HeadAVX2Go(S, r, w, k, v, nkk, kka, y []float32) {
	n := len(y)
	if n == 0 || n%8 != 0 {
		wkv7HeadGo(S, r, w, k, v, nkk, kka, y)
		return
	}
	_, _, _, _, _, _, _ = S[n*n-1], r[n-1], w[n-1], k[n-1], v[n-1], nkk[n-1], kka[n-1]
	wkv7HeadAVX2(&S[0], n, &r[0], &w[0], &k[0], &v[0], &nkk[0], &kka[0], &y[0])
}

func reluSquareAVX2Go(x []float32) {
	n := len(x) &^ 7
	if n > 0 {
		reluSquareAVX2(&x[0], n)
	}
	reluSquareGo(x[n:])
}

func int8RowsAVX2Go(q []uint8, cols int, x, scale, out []float32) {
	n := len(out)
	if n == 0 {
		return
	}
	nb := cols / 128
	_, _, _ = q[n*cols-1], x[cols-1], scale[n*nb-1]
	int8RowsAVX2(&q[0], cols, &x[0], cols, &scale[0], &out[0], n)
}

func nf4RowsAVX2Go(codes []uint8, cols int, xp, absmax, out []float32) {
	n := len(out)
	if n == 0 {
		return
	}
	nb := cols / 64
	_, _, _ = codes[n*cols/2-1], xp[cols-1], absmax[n*nb-1]
	nf4RowsAVX2(&codes[0], cols/2, &xp[0], cols, &absmax[0], &out[0], n)
}
