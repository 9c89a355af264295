package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// MaxRank bounds the rank a reader accepts; RWKV tensors have rank ≤ 3.
const MaxRank = 8

// quoteLen is how much of a name Quote shows.
const quoteLen = 100

// Quote is strconv.Quote of s cut to its first 100 bytes (at a character
// boundary), followed by s's length when it was cut. Errors quote names
// from files with it, so that what they say stays a few hundred bytes
// whatever a file holds.
func Quote(s string) string {
	if len(s) <= quoteLen {
		return strconv.Quote(s)
	}
	cut := quoteLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// A Tensor describes one named tensor whose bytes are read only when asked
// for. The bytes are row-major and little-endian, in DType's storage layout.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64

	// Region, when not empty, names the bytes of its file that the tensor
	// reads, for readers whose tensors may alias one another (torch saves
	// tied weights as two names of one storage): tensors of one source with
	// equal Region, DType and Shape read the same bytes, so a consumer may
	// read and keep them once. A tensor made by NewTensor has none, so a
	// transform that changes the bytes gives its result a Region of its own
	// or none.
	Region string

	size int64
	open func() (io.ReadCloser, error)
}

// NewTensor returns a tensor whose bytes come from open. It checks that the
// shape is valid and computes the byte size with overflow checks, so a reader
// can call it before trusting any field of its file.
func NewTensor(name string, dt DType, shape []int64, open func() (io.ReadCloser, error)) (*Tensor, error) {
	n, err := NumElements(shape)
	if err != nil {
		return nil, &TensorError{Tensor: name, Err: err}
	}
	size, err := dt.StorageSize(n)
	if err != nil {
		return nil, &TensorError{Tensor: name, Err: err}
	}
	return &Tensor{Name: name, DType: dt, Shape: shape, size: size, open: open}, nil
}

// NumElements is the product of shape, checked: no negative dimension, no
// overflow, rank at most MaxRank.
func NumElements(shape []int64) (int64, error) {
	if len(shape) > MaxRank {
		return 0, fmt.Errorf("rank %d exceeds %d", len(shape), MaxRank)
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("element count of shape %v overflows", shape)
		}
		n *= d
	}
	return n, nil
}

// Len is the number of elements.
func (t *Tensor) Len() int64 {
	n, _ := NumElements(t.Shape) // checked by NewTensor
	return n
}

// Size is the number of stored bytes.
func (t *Tensor) Size() int64 { return t.size }

// Open returns a reader of exactly Size bytes of the tensor's data.
func (t *Tensor) Open() (io.ReadCloser, error) {
	if t.open == nil {
		return nil, &TensorError{Tensor: t.Name, Err: errors.New("no data")}
	}
	return t.open()
}

// ErrShortData is returned when a tensor's reader ends before Size bytes.
var ErrShortData = errors.New("tensor data shorter than its declared size")

// ReadFull fills b from r, as io.ReadFull does, with a reader that ends
// early reported as ErrShortData.
func ReadFull(r io.Reader, b []byte) error {
	_, err := io.ReadFull(r, b)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = ErrShortData
	}
	return err
}

// Bytes reads the whole tensor. Its memory is Size bytes, which the reader
// that made the tensor has checked against the file.
func (t *Tensor) Bytes() ([]byte, error) {
	if t.size > math.MaxInt {
		return nil, &TensorError{Tensor: t.Name, Err: fmt.Errorf("%d bytes do not fit in memory", t.size)}
	}
	r, err := t.Open()
	if err != nil {
		return nil, TensorErr(t.Name, err)
	}
	defer r.Close()
	if c, ok := r.(*computed); ok && int64(c.Len()) == t.size && len(c.b) == c.Len() {
		return c.b, nil
	}
	buf := make([]byte, t.size)
	if err := ReadFull(r, buf); err != nil {
		return nil, TensorErr(t.Name, err)
	}
	return buf, nil
}

// Float32 reads a floating-point tensor and widens it to float32.
func (t *Tensor) Float32() ([]float32, error) {
	if !t.DType.Float() {
		return nil, &TensorError{Tensor: t.Name, Err: fmt.Errorf("%v is not a floating-point type", t.DType)}
	}
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	out := make([]float32, t.Len())
	if err := DecodeFloat32(out, b, t.DType); err != nil {
		return nil, TensorErr(t.Name, err)
	}
	return out, nil
}

// A Source is an ordered, named set of tensors with string metadata: what
// every reader returns and every writer takes.
type Source struct {
	// Format is the name the file's format registered with ("pth",
	// "safetensors", "rkv"); empty for sources built in memory.
	Format   string
	Tensors  []*Tensor
	Metadata map[string]string

	// Info, once set, is the model the tensors make up: Detect records it
	// on its first success and returns it from then on, and sources made
	// from a model's (see Derive) carry it, so that a model is detected
	// once, from its file's own tensors. Nil until then, and for sources
	// that are not models (LoRA and state files).
	Info *ModelInfo

	// Closer releases the underlying file, if any.
	Closer io.Closer
	index  map[string]*Tensor
}

// Derive returns an empty source of the same file and model as s (format,
// metadata, Info, closer), for a transform to fill with s's tensors as it
// changes them: their names, shapes and number stay those of the model
// Info describes.
func (s *Source) Derive() *Source {
	return &Source{Format: s.Format, Metadata: s.Metadata, Info: s.Info, Closer: s.Closer}
}

// Lookup returns the tensor named name, or nil.
func (s *Source) Lookup(name string) *Tensor {
	if s.index == nil || len(s.index) != len(s.Tensors) {
		s.index = make(map[string]*Tensor, len(s.Tensors))
		for _, t := range s.Tensors {
			s.index[t.Name] = t
		}
	}
	return s.index[name]
}

// Close releases the file behind s.
func (s *Source) Close() error {
	if s.Closer == nil {
		return nil
	}
	return s.Closer.Close()
}

// Computed returns a reader of b, the bytes of a tensor computed afresh
// when it was opened, which hands b itself to [Tensor.Bytes] rather than a
// copy: reading such a tensor whole then costs its memory once, not twice.
// Whoever made b must not use it again.
func Computed(b []byte) io.ReadCloser { return &computed{bytes.NewReader(b), b} }

type computed struct {
	*bytes.Reader
	b []byte
}

func (c *computed) Close() error { return nil }

// Section returns a reader of the n bytes at off of r, for a tensor stored
// as they are: it reads them in order, and at any offset (io.ReaderAt), so
// that [Stream] can read the tensor in pieces on several cores at once.
func Section(r io.ReaderAt, off, n int64) io.ReadCloser {
	return section{io.NewSectionReader(r, off, n)}
}

type section struct{ *io.SectionReader }

func (section) Close() error { return nil }

// BytesOpener returns an opener over a fixed byte slice, for tensors made in memory.
func BytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}
