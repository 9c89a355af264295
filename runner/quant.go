package runner

import (
	"encoding/binary"
	"fmt"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
)

// nf4Table is the NF4 code book the quantizer encodes with.
var nf4Table = quantize.NF4Table

// A codeBook is a 4-bit kind's table and, for each byte, the table values
// of its low and high nibble.
type codeBook struct {
	table *[16]float32
	pairs [256][2]float32
}

func newCodeBook(t *[16]float32) *codeBook {
	cb := &codeBook{table: t}
	for b := range cb.pairs {
		cb.pairs[b] = [2]float32{t[b&15], t[b>>4]}
	}
	return cb
}

// The code books of NF4 and SF4 (web-rwkv's Student-t variant).
var codeBooks = map[format.DType]*codeBook{
	format.NF4Block: newCodeBook(&nf4Table),
	format.SF4Block: newCodeBook(&quantize.SF4Table),
}

// quantRows is the number of rows a quantized matrix-vector product decodes
// at a time, so that the float32 row kernel can share each load of x.
const quantRows = 4

// int8Matrix is web-rwkv's Int8: per block of 128 consecutive elements of
// the row-major matrix, w = min + (max − min)·q/255.
type int8Matrix struct {
	rows, cols int
	q          []uint8
	min, scale []float32 // per block; scale = (max − min)/255
	size       int64
}

func newInt8Matrix(b []byte, rows, cols int) (*int8Matrix, error) {
	n := rows * cols
	blocks := (n + format.Int8BlockSize - 1) / format.Int8BlockSize
	if len(b) != n+4*blocks {
		return nil, fmt.Errorf("%v payload of %d bytes for %d elements", format.Int8Block, len(b), n)
	}
	m := &int8Matrix{rows: rows, cols: cols, q: b[:n:n], min: make([]float32, blocks), scale: make([]float32, blocks), size: int64(len(b))}
	for j := range blocks {
		lo := format.F16ToF32(binary.LittleEndian.Uint16(b[n+4*j:]))
		hi := format.F16ToF32(binary.LittleEndian.Uint16(b[n+4*j+2:]))
		m.min[j], m.scale[j] = lo, (hi-lo)/255
	}
	return m, nil
}

func (m *int8Matrix) dims() (int, int)    { return m.rows, m.cols }
func (m *int8Matrix) bytes() int64        { return m.size }
func (m *int8Matrix) dtype() format.DType { return format.Int8Block }

// decode writes the elements [start, start+len(dst)) of the flat matrix.
func (m *int8Matrix) decode(dst []float32, start int) {
	const B = format.Int8BlockSize
	for i := 0; i < len(dst); {
		e := start + i
		j := e / B
		n := min(len(dst)-i, (j+1)*B-e)
		lo, sc := m.min[j], m.scale[j]
		q := m.q[e : e+n]
		d := dst[i : i+n]
		for k, c := range q {
			d[k] = lo + sc*float32(c)
		}
		i += n
	}
}

func (m *int8Matrix) tile(r0, r1 int, sc *scratch) []float32 {
	dst := sc.floats((r1 - r0) * m.cols)
	m.decode(dst, r0*m.cols)
	return dst
}

// mulVec uses Σ_j (min + s·q_j)·x_j = min·Σ_j x_j + s·Σ_j q_j·x_j per block:
// the code sums in the kernel, the block sums of x once per call.
func (m *int8Matrix) mulVec(out, x []float32, r0 int, sc *scratch) {
	const B = format.Int8BlockSize
	if int8Rows == nil || m.cols%B != 0 {
		quantMulVec(m.decode, m.cols, out, x, r0, sc)
		return
	}
	nb := m.cols / B
	sx := sc.floats(nb)
	for b := range sx {
		sx[b] = sumF32(x[b*B : (b+1)*B])
	}
	int8Rows(m.q[r0*m.cols:], m.cols, x, m.scale[r0*nb:], out)
	for i := range out {
		mins := m.min[(r0+i)*nb : (r0+i+1)*nb]
		var s float32
		for b, mn := range mins {
			s += mn * sx[b]
		}
		out[i] += s
	}
}

// quantMulVec decodes a few rows at a time into scratch and multiplies them
// with the float32 kernel, so a matrix is never widened whole.
func quantMulVec(decode func([]float32, int), cols int, out, x []float32, r0 int, sc *scratch) {
	buf := sc.floats(quantRows * cols)
	for i := 0; i < len(out); i += quantRows {
		n := min(quantRows, len(out)-i)
		decode(buf[:n*cols], (r0+i)*cols)
		dotRowsF32(out[i:i+n], buf, cols, x, cols)
	}
}

// nf4Matrix is web-rwkv's NF4 or SF4: per block of 64 consecutive
// elements, w = table[code]·absmax; element 2i is the low nibble of byte i.
type nf4Matrix struct {
	rows, cols int
	codes      []uint8
	absmax     []float32
	size       int64
	kind       format.DType
	book       *codeBook
}

func newNF4Matrix(kind format.DType, b []byte, rows, cols int) (*nf4Matrix, error) {
	n := rows * cols
	blocks := (n + format.NF4BlockSize - 1) / format.NF4BlockSize
	nb := (n + 1) / 2
	if len(b) != nb+2*blocks {
		return nil, fmt.Errorf("%v payload of %d bytes for %d elements", kind, len(b), n)
	}
	m := &nf4Matrix{rows: rows, cols: cols, codes: b[:nb:nb], absmax: make([]float32, blocks), size: int64(len(b)),
		kind: kind, book: codeBooks[kind]}
	for j := range blocks {
		m.absmax[j] = format.F16ToF32(binary.LittleEndian.Uint16(b[nb+2*j:]))
	}
	return m, nil
}

func (m *nf4Matrix) dims() (int, int)    { return m.rows, m.cols }
func (m *nf4Matrix) bytes() int64        { return m.size }
func (m *nf4Matrix) dtype() format.DType { return m.kind }

func (m *nf4Matrix) decode(dst []float32, start int) {
	const B = format.NF4BlockSize
	for i := 0; i < len(dst); {
		e := start + i
		j := e / B
		n := min(len(dst)-i, (j+1)*B-e)
		a := m.absmax[j]
		d := dst[i : i+n]
		k := 0
		if e&1 == 1 { // starts on a high nibble
			d[0] = m.book.table[m.codes[e>>1]>>4] * a
			k = 1
		}
		codes := m.codes[(e+k)>>1:]
		for ; k+2 <= n; k += 2 {
			p := &m.book.pairs[codes[0]]
			d[k], d[k+1] = p[0]*a, p[1]*a
			codes = codes[1:]
		}
		if k < n { // ends on a low nibble
			d[k] = m.book.table[codes[0]&15] * a
		}
		i += n
	}
}

func (m *nf4Matrix) tile(r0, r1 int, sc *scratch) []float32 {
	dst := sc.floats((r1 - r0) * m.cols)
	m.decode(dst, r0*m.cols)
	return dst
}

func (m *nf4Matrix) mulVec(out, x []float32, r0 int, sc *scratch) {
	const B = format.NF4BlockSize
	// The vector kernel has NF4's table built in.
	if nf4Rows == nil || m.cols%B != 0 || m.kind != format.NF4Block {
		quantMulVec(m.decode, m.cols, out, x, r0, sc)
		return
	}
	// The kernel takes each byte's two codes apart as 8 even then 8 odd
	// elements per 16; x is reordered to match, once per call.
	xp := sc.floats(m.cols)
	for g := 0; g < m.cols; g += 16 {
		for j := range 8 {
			xp[g+j], xp[g+8+j] = x[g+2*j], x[g+2*j+1]
		}
	}
	nb := m.cols / B
	nf4Rows(m.codes[r0*m.cols/2:], m.cols, xp, m.absmax[r0*nb:], out)
}
