package gpuengine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/rwkvkit/rwkvkit/format"
)

// Storage kinds of matrices, as the linear kernels number them.
const (
	kindF16  = 0
	kindInt8 = 1
	kindNF4  = 2
	kindSF4  = 3
)

// A tensorSpec is a tensor a version needs: a vector of n values or a
// [rows, cols] matrix. Vectors of one layer share an arena (the kernels
// that read them bind one).
type tensorSpec struct {
	name       string
	n          int // vector length; 0 for a matrix
	rows, cols int
	group      int // specs of one group are placed in one arena

	perHead bool                  // a vector that may hold one value per head, repeated over its channels
	xform   func(float64) float64 // applied to a vector's values at load
	stack   int                   // a matrix stored as [stack, rows/stack, cols] (v6's time_mix_w2)
	// withVecs places a matrix among its layer's vectors, in their arena,
	// for a kernel that binds the vectors and reads the matrix too.
	withVecs bool
}

// A vector is placed float32 data.
type vector struct{ arena, off int } // word offset

// A matrix is placed weights, cut into row pieces when it exceeds a
// binding; each piece is multiplied as a matrix of its own.
type matrix struct {
	kind       int
	rows, cols int
	pieces     []piece
}

type piece struct {
	arena  int
	w, p   int // word offsets of the codes and of the block parameters
	r0, n  int // rows [r0, r0+n)
	wBytes int // bytes of codes in the arena
	pBytes int
}

// arenas places tensors in storage buffers of at most limit bytes.
type arenas struct {
	limit int64
	sizes []int64
	group int // group of the last placement
}

// align is the alignment of every placement: storage bindings start at
// multiples of 256 bytes, and 16 bytes is what vec4 reads need.
const align = 256

func alignUp(n int64, a int64) int64 { return (n + a - 1) / a * a }

// reserve returns the arena and byte offset of n bytes. A new group starts
// a new arena when the whole group (total bytes) does not fit in the
// current one.
func (a *arenas) reserve(n int64, group int, total int64) (int, int64, error) {
	if n > a.limit {
		return 0, 0, fmt.Errorf("%d bytes exceed the binding limit of %d", n, a.limit)
	}
	i := len(a.sizes) - 1
	if i < 0 || a.sizes[i]+n > a.limit || (group != a.group && a.sizes[i]+total > a.limit && total <= a.limit) {
		a.sizes = append(a.sizes, 0)
		i++
	}
	a.group = group
	off := a.sizes[i]
	a.sizes[i] = alignUp(off+n, align)
	return i, off, nil
}

// storageOf returns the GPU storage kind of a tensor of dtype dt.
func storageOf(dt format.DType) (int, error) {
	switch dt {
	case format.F16, format.BF16, format.F32, format.F64:
		return kindF16, nil
	case format.Int8Block:
		return kindInt8, nil
	case format.NF4Block:
		return kindNF4, nil
	case format.SF4Block:
		return kindSF4, nil
	}
	return 0, fmt.Errorf("%w: %v", errDType, dt)
}

var errDType = errors.New("unsupported dtype")

// blockSize is the values per block of parameters of a kind (0: none).
func blockSize(kind int) int {
	switch kind {
	case kindInt8:
		return format.Int8BlockSize
	case kindNF4, kindSF4:
		return format.NF4BlockSize
	}
	return 0
}

// codeBytes and paramBytes are the sizes of n values of a kind.
func codeBytes(kind, n int) int {
	switch kind {
	case kindInt8:
		return n
	case kindNF4, kindSF4:
		return n / 2
	}
	return 2 * n
}

func paramBytes(kind, n int) int {
	switch kind {
	case kindInt8:
		return 4 * ((n + format.Int8BlockSize - 1) / format.Int8BlockSize)
	case kindNF4, kindSF4:
		return 2 * ((n + format.NF4BlockSize - 1) / format.NF4BlockSize)
	}
	return 0
}

// placeMatrix cuts a matrix into pieces that fit a binding, each a multiple
// of 4 rows and, when quantized, of whole pairs of blocks.
func (a *arenas) placeMatrix(m *matrix, group int) error {
	rowBytes := int64(codeBytes(m.kind, m.cols) + paramBytes(m.kind, m.cols))
	step := 4
	if bs := blockSize(m.kind); bs > 0 {
		for step*m.cols%(2*bs) != 0 {
			step += 4
		}
	}
	per := int(a.limit/(rowBytes+2*align)) / step * step
	if per == 0 {
		return fmt.Errorf("%d rows of %d bytes exceed the binding limit of %d", step, rowBytes, a.limit)
	}
	for r0 := 0; r0 < m.rows; r0 += per {
		n := min(per, m.rows-r0)
		wb, pb := codeBytes(m.kind, n*m.cols), paramBytes(m.kind, n*m.cols)
		total := alignUp(int64(wb), align) + int64(pb)
		ar, off, err := a.reserve(total, group, total)
		if err != nil {
			return err
		}
		p := piece{arena: ar, w: int(off / 4), r0: r0, n: n, wBytes: wb, pBytes: pb}
		p.p = p.w + int(alignUp(int64(wb), align)/4)
		m.pieces = append(m.pieces, p)
	}
	return nil
}

// convertPiece returns the bytes of piece p of matrix m as the arena holds
// them (float16), from payload, the tensor's bytes in dt, a type that must
// be converted first (bfloat16, float32, float64; see pieceRanges).
func convertPiece(payload []byte, dt format.DType, m *matrix, p piece) ([]byte, error) {
	e0, e1 := p.r0*m.cols, (p.r0+p.n)*m.cols
	switch dt {
	case format.BF16:
		out := make([]byte, 2*(e1-e0))
		for i := range e1 - e0 {
			binary.LittleEndian.PutUint16(out[2*i:], format.BF16ToF16(binary.LittleEndian.Uint16(payload[2*(e0+i):])))
		}
		return out, nil
	case format.F32, format.F64:
		f := make([]float32, e1-e0)
		sz := dt.Size()
		if err := format.DecodeFloat32(f, payload[sz*e0:sz*e1], dt); err != nil {
			return nil, err
		}
		out := make([]byte, 2*len(f))
		for i, v := range f {
			binary.LittleEndian.PutUint16(out[2*i:], format.F32ToF16(v))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %v", errDType, dt)
}

// A span is bytes [lo, hi) of a tensor's payload that go to an arena at a
// word offset unchanged.
type span struct {
	lo, hi       int64
	arena, words int
}

// pieceRanges returns, in payload order, where the payload of a matrix
// stored as dt goes when the arenas hold its bytes as they are (float16,
// and the blocks of the quantized kinds: codes, then block parameters);
// none when they must be converted first.
func pieceRanges(t *format.Tensor, dt format.DType, m *matrix) ([]span, error) {
	var codes, params []span
	switch dt {
	case format.F16, format.Int8Block, format.NF4Block, format.SF4Block:
	default:
		return nil, nil
	}
	kind, err := storageOf(dt)
	if err != nil {
		return nil, err
	}
	if kind != m.kind {
		return nil, fmt.Errorf("%v data for a matrix placed as kind %d", dt, m.kind)
	}
	n := m.rows * m.cols
	cb := int64(codeBytes(kind, n))
	for _, p := range m.pieces {
		e0, e1 := p.r0*m.cols, (p.r0+p.n)*m.cols
		codes = append(codes, span{int64(codeBytes(kind, e0)), int64(codeBytes(kind, e1)), p.arena, p.w})
		if bs := blockSize(kind); bs > 0 {
			pb := int64(paramBytes(kind, bs))
			params = append(params, span{cb + int64(e0/bs)*pb, cb + int64((e1+bs-1)/bs)*pb, p.arena, p.p})
		}
	}
	rs := append(codes, params...)
	// The spans tile the payload, which is read straight through once.
	end := int64(0)
	if len(rs) > 0 {
		end = rs[len(rs)-1].hi
	}
	if end != t.Size() {
		return nil, fmt.Errorf("%v payload of %d bytes for %d values (want %d)", dt, t.Size(), n, end)
	}
	return rs, nil
}

// stream reads t's payload once, front to back, into the arenas at rs,
// through the device's staging buffers: no copy of the tensor in host
// memory, and reading overlaps the copies to the GPU.
func (e *Engine) stream(t *format.Tensor, rs []span) error {
	r, err := t.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	e.d.Lock()
	defer e.d.Unlock()
	for _, s := range rs {
		n := s.hi - s.lo
		padded := uint64(alignUp(n, 4))
		err := e.d.UploadFrom(e.arenas[s.arena], uint64(4*s.words), padded, func(b []byte, at uint64) error {
			k := min(int64(len(b)), n-int64(at))
			if err := format.ReadFull(r, b[:k]); err != nil {
				return err
			}
			clear(b[k:])
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// f32Bytes returns v as little-endian bytes.
func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// newArenas creates the arena buffers.
func (e *Engine) newArenas(sizes []int64) error {
	for i, s := range sizes {
		b, err := e.d.Storage(fmt.Sprintf("weights %d", i), uint64(max(s, 16)))
		if err != nil {
			return err
		}
		e.arenas = append(e.arenas, b)
	}
	return nil
}

func (e *Engine) upload(arena int, wordOff int, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if len(b)%4 != 0 {
		b = append(b[:len(b):len(b)], make([]byte, 4-len(b)%4)...)
	}
	return e.d.Upload(e.arenas[arena], uint64(4*wordOff), b)
}
