package pth

import (
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/rwkvkit/rwkvkit/format"
)

// A storage is one flat run of elements in the file, shared by the tensors
// that view it.
type storage struct {
	key    string
	dtype  format.DType // Invalid for an untyped (byte) storage
	nbytes int64

	// base and baseOff place a legacy storage view inside its root storage;
	// both are unset for a root.
	base    *storage
	baseOff int64

	// off is the file offset of the storage's first byte; -1 until known
	// (a legacy checkpoint places its storages after the pickles).
	off int64
}

// fileOffset is where the storage's bytes start in the file.
func (s *storage) fileOffset() int64 {
	if s.base != nil {
		return s.base.off + s.baseOff
	}
	return s.off
}

// A tensorRef is a tensor as the pickle describes it: a view of a storage.
type tensorRef struct {
	st     *storage
	dtype  format.DType
	offset int64 // in elements of dtype
	shape  []int64
	stride []int64 // in elements of dtype
	// Set by check:
	numel  int64
	maxIdx int64 // largest element index the view touches; offset-1 if empty
}

// check tests a view against its storage: every element it touches must
// lie inside the storage, and it may not have more elements than the
// storage (which rules out expanded views, whose size is not bounded by the
// file). It fills in numel and maxIdx.
func (t *tensorRef) check() error {
	es := int64(t.dtype.Size())
	if es == 0 {
		return fmt.Errorf("unsupported dtype %v", t.dtype)
	}
	if len(t.shape) != len(t.stride) {
		return fmt.Errorf("shape %v but stride %v", t.shape, t.stride)
	}
	numel, err := format.NumElements(t.shape)
	if err != nil {
		return err
	}
	if t.offset < 0 {
		return fmt.Errorf("negative storage offset %d", t.offset)
	}
	st := t.st
	avail := st.nbytes / es // whole elements of dtype in the storage
	t.numel = numel
	if numel == 0 {
		if t.offset > avail {
			return fmt.Errorf("empty tensor's offset %d is past its storage %s of %d elements", t.offset, quote(st.key), avail)
		}
		t.maxIdx = t.offset - 1
		return nil
	}
	last := t.offset
	for i, d := range t.shape {
		s := t.stride[i]
		if s < 0 {
			return fmt.Errorf("negative stride %v", t.stride)
		}
		if d > 1 && s > (math.MaxInt64-last)/(d-1) {
			return fmt.Errorf("shape %v and stride %v overflow", t.shape, t.stride)
		}
		last += (d - 1) * s
	}
	if last >= avail {
		return fmt.Errorf("shape %v, stride %v, offset %d reaches element %d of storage %s, which has %d",
			t.shape, t.stride, t.offset, last, quote(st.key), avail)
	}
	if numel > avail {
		return fmt.Errorf("shape %v has %d elements but its storage %s only %d: expanded or overlapping views are not supported",
			t.shape, numel, quote(st.key), avail)
	}
	t.maxIdx = last
	return nil
}

// contiguous reports whether the view is one row-major run of its storage.
func (t *tensorRef) contiguous() bool {
	if t.numel == 0 {
		return true
	}
	want := int64(1)
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] == 1 {
			continue
		}
		if t.stride[i] != want {
			return false
		}
		want *= t.shape[i]
	}
	return true
}

// region names the bytes the view reads, as format.Tensor.Region: where
// they start in the file and, for a view that is not one run, its strides.
// Every storage is placed in the file by the time tensors are made.
func (t *tensorRef) region() string {
	base := t.st.fileOffset()
	if base < 0 {
		return ""
	}
	start := base + t.offset*int64(t.dtype.Size())
	if t.contiguous() {
		return strconv.FormatInt(start, 10)
	}
	return fmt.Sprintf("%d%v", start, t.stride)
}

// opener returns the function that reads the tensor's bytes from r in
// row-major order, little-endian.
func (t *tensorRef) opener(r io.ReaderAt, bigEndian bool) func() (io.ReadCloser, error) {
	es := int64(t.dtype.Size())
	swap := bigEndian && es > 1
	return func() (io.ReadCloser, error) {
		base := t.st.fileOffset()
		if base < 0 {
			return nil, fmt.Errorf("storage %s has no data", quote(t.st.key))
		}
		start := base + t.offset*es
		if t.contiguous() {
			if swap {
				return io.NopCloser(&swapReader{r: io.NewSectionReader(r, start, t.numel*es), es: int(es)}), nil
			}
			return format.Section(r, start, t.numel*es), nil
		}
		buf := make([]byte, t.numel*es)
		if err := t.gather(buf, r, start); err != nil {
			return nil, err
		}
		if swap {
			swapBytes(buf, int(es))
		}
		return format.Computed(buf), nil
	}
}

// gatherWindow is the least number of bytes a windowed gather reads at a time.
const gatherWindow = 1 << 20

// runCost is what one read call is taken to cost, in bytes read: a gather
// reads run by run when that is cheaper than reading the whole span.
const runCost = 4096

// gather fills dst with the view's elements in row-major order. A dense
// view (a transposed matrix, a column slice) is read through windows of at
// least the tensor's size that are scattered into dst, so its span is read
// once, in order. A sparse one (every 1000th element) is read run by run.
// Either way the bytes read are at most runCost per run, so no view makes a
// read cost more than a constant times the tensor.
func (t *tensorRef) gather(dst []byte, r io.ReaderAt, start int64) error {
	es := int64(t.dtype.Size())
	shape, stride := collapse(t.shape, t.stride)
	run := int64(1) // elements copied as one piece
	if n := len(shape); n > 0 && stride[n-1] == 1 {
		run = shape[n-1]
		shape, stride = shape[:n-1], stride[:n-1]
	}
	span := t.maxIdx - t.offset + 1
	if runs := t.numel / run; runs <= span*es/runCost {
		return eachRun(shape, stride, run, func(src, out int64) error {
			return readFull(r, dst[out*es:(out+run)*es], start+src*es)
		})
	}
	win := min(span, max(t.numel, gatherWindow/es))
	buf := make([]byte, win*es)
	for lo := int64(0); lo < span; lo += win {
		n := min(win, span-lo)
		if err := readFull(r, buf[:n*es], start+lo*es); err != nil {
			return err
		}
		eachRun(shape, stride, run, func(src, out int64) error {
			// Copy the part of the run [src, src+run) inside [lo, lo+n).
			if a, b := max(src, lo), min(src+run, lo+n); a < b {
				copy(dst[(out+a-src)*es:(out+b-src)*es], buf[(a-lo)*es:(b-lo)*es])
			}
			return nil
		})
	}
	return nil
}

// eachRun calls f for every run of run elements of a view with the given
// outer shape and stride: src is the run's first element in the storage,
// counted from the view's offset, and out its place in the row-major result.
func eachRun(shape, stride []int64, run int64, f func(src, out int64) error) error {
	idx := make([]int64, len(shape))
	src, out := int64(0), int64(0)
	for {
		if err := f(src, out); err != nil {
			return err
		}
		out += run
		k := len(shape) - 1
		for ; k >= 0; k-- {
			idx[k]++
			src += stride[k]
			if idx[k] < shape[k] {
				break
			}
			src -= idx[k] * stride[k]
			idx[k] = 0
		}
		if k < 0 {
			return nil
		}
	}
}

// readFull reads len(b) bytes at off.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	if n, err := r.ReadAt(b, off); n < len(b) {
		if err == nil || err == io.EOF {
			err = format.ErrShortData
		}
		return err
	}
	return nil
}

// collapse drops dimensions of size 1 and merges neighbours that are
// contiguous with each other, so a view has as few and as long runs as it can.
func collapse(shape, stride []int64) ([]int64, []int64) {
	var sh, st []int64
	for i, d := range shape {
		if d == 1 {
			continue
		}
		if n := len(sh); n > 0 && st[n-1] == d*stride[i] {
			sh[n-1] *= d
			st[n-1] = stride[i]
			continue
		}
		sh = append(sh, d)
		st = append(st, stride[i])
	}
	return sh, st
}

// swapBytes reverses the bytes of every es-byte element of b.
func swapBytes(b []byte, es int) {
	for i := 0; i+es <= len(b); i += es {
		e := b[i : i+es]
		for j, k := 0, es-1; j < k; j, k = j+1, k-1 {
			e[j], e[k] = e[k], e[j]
		}
	}
}

// swapReader byte-swaps the elements it reads. Its source holds whole
// elements, so reading in chunks that are a multiple of the element size
// never splits one.
type swapReader struct {
	r       *io.SectionReader
	es      int
	buf     []byte
	pending []byte
}

func (s *swapReader) Read(p []byte) (int, error) {
	if len(s.pending) == 0 {
		if s.buf == nil {
			s.buf = make([]byte, min(s.r.Size(), 64<<10))
		}
		n, err := io.ReadFull(s.r, s.buf)
		if n == 0 {
			if err == nil || err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return 0, err
		}
		if n%s.es != 0 {
			return 0, format.ErrShortData
		}
		s.pending = s.buf[:n]
		swapBytes(s.pending, s.es)
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}
