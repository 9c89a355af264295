package format

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"
)

// renames are web-rwkv's converter substitutions, applied in this order.
var renames = [][2]string{
	{"time_faaaa", "time_first"},
	{"time_maa", "time_mix"},
	{"lora_A", "lora.0"},
	{"lora_B", "lora.1"},
}

// transposed lists the substrings that make web-rwkv's converter swap a
// tensor's last two dimensions (tested against the new name, plain substring).
var transposed = []string{
	"time_mix_w1", "time_mix_w2", "time_decay_w1", "time_decay_w2",
	"w1", "w2", "a1", "a2", "g1", "g2", "v1", "v2", "time_state", "lora.0",
}

// WebRWKVName returns the name web-rwkv's converter gives the tensor name,
// and whether it transposes that tensor's last two dimensions.
func WebRWKVName(name string) (string, bool) {
	for _, r := range renames {
		name = strings.ReplaceAll(name, r[0], r[1])
	}
	name = strings.ToLower(name)
	for _, s := range transposed {
		if strings.Contains(name, s) {
			return name, true
		}
	}
	return name, false
}

// WebRWKV returns src in web-rwkv's layout (docs/web-rwkv-layout.md §1)
// without changing any dtype: renamed and lower-cased, LoRA-style matrices
// transposed, and what a version adds (v5.1's decay and bonus repeated per
// channel, which makes it a v5.2). A source already in that layout is
// returned as it is. Tensors stay lazy; a transposed one is read whole when
// opened. The result's Info is the model in its new layout.
func WebRWKV(src *Source) (*Source, error) {
	info, detectErr := Detect(src)
	if detectErr != nil {
		if !isLoRAOrState(src) {
			return nil, detectErr
		}
		converted, err := convertedLoRAOrState(src)
		if err != nil || converted {
			return src, err
		}
	}
	if detectErr == nil && info.Layout == LayoutWebRWKV {
		return src, nil
	}
	out := src.Derive()
	var g *generation
	if detectErr == nil {
		g = generationOf(info.Version)
		web := info
		web.Layout = LayoutWebRWKV
		if g.webRWKVInfo != nil {
			g.webRWKVInfo(&web)
		}
		out.Info = &web
	}
	for _, t := range src.Tensors {
		name, swap := WebRWKVName(t.Name)
		nt := t
		var err error
		if g != nil && g.toWebRWKV != nil {
			if nt, err = g.toWebRWKV(t, info); err != nil {
				return nil, err
			}
		}
		if swap && len(nt.Shape) >= 2 {
			nt, err = transposeLast2(nt)
			if err != nil {
				return nil, err
			}
		}
		if name != t.Name || nt != t {
			c := *nt
			c.Name = name
			nt = &c
		}
		out.Tensors = append(out.Tensors, nt)
	}
	return out, nil
}

// isLoRAOrState reports whether src holds a LoRA or a state file, which the
// converter handles by name alone.
func isLoRAOrState(src *Source) bool {
	for _, t := range src.Tensors {
		if strings.Contains(t.Name, "lora") || strings.Contains(t.Name, "time_state") {
			return true
		}
	}
	return false
}

// convertedLoRAOrState reports whether a LoRA or state source is already in
// web-rwkv's layout, so that converting it again changes nothing (the
// converter's transposes would undo themselves). A name the converter would
// change (lora_A, time_maa, upper case, …) is RWKV-LM's; a pair named
// lora.0/lora.1 is web-rwkv's; names alike in both layouts (a state's
// time_state, RWKV-7's w1) are web-rwkv's in a safetensors file, what its
// converter writes (and how statefile.Load reads a state there), and
// RWKV-LM's in any other (a .pth is what training writes).
func convertedLoRAOrState(src *Source) (bool, error) {
	var lm, web string
	for _, t := range src.Tensors {
		if lm == "" && renamed(t.Name) {
			lm = t.Name
		}
		if (strings.Contains(t.Name, ".lora.0") || strings.Contains(t.Name, ".lora.1")) && web == "" {
			web = t.Name
		}
	}
	switch {
	case lm != "" && web != "":
		return false, fmt.Errorf("%w: %s is named as RWKV-LM names it, %s as web-rwkv does", ErrMixedLayout, Quote(lm), Quote(web))
	case lm != "":
		return false, nil
	case web != "":
		return true, nil
	}
	return src.Format == "safetensors", nil
}

// renamed reports whether WebRWKVName changes name, without making the
// new name (a hostile file may hold a million tensors).
func renamed(name string) bool {
	for _, r := range renames {
		if strings.Contains(name, r[0]) {
			return true
		}
	}
	return strings.IndexFunc(name, func(r rune) bool { return unicode.ToLower(r) != r }) >= 0
}

// ErrMixedLayout is wrapped by WebRWKV's error for a LoRA or state file with
// names of both layouts, which no conversion makes consistent.
var ErrMixedLayout = errors.New("names of both RWKV-LM's and web-rwkv's layouts")

// CastF16 returns src with every floating-point tensor converted to float16
// (rounded once, to nearest even). Other dtypes are refused: web-rwkv loads
// F16 only.
func CastF16(src *Source) (*Source, error) {
	out := src.Derive()
	for _, t := range src.Tensors {
		if t.DType == F16 {
			out.Tensors = append(out.Tensors, t)
			continue
		}
		if !t.DType.Float() {
			return nil, fmt.Errorf("tensor %s: cannot convert %v to F16", Quote(t.Name), t.DType)
		}
		nt, err := NewTensor(t.Name, F16, t.Shape, castOpener(t))
		if err != nil {
			return nil, err
		}
		out.Tensors = append(out.Tensors, nt)
	}
	return out, nil
}

// castChunk is the number of elements converted per step, so a cast needs
// memory for a chunk, not for the tensor.
const castChunk = 1 << 16

// castBufs holds the buffers of finished casts of at least castChunk
// elements, big enough for a chunk of any dtype (8 bytes in, 2 out); a
// smaller tensor's cast gets buffers of its own size. Either way opening a
// cast costs what its tensor needs, so a file of many small tensors costs
// what its bytes do.
var castBufs = sync.Pool{New: func() any { b := make([]byte, castChunk*(8+2)); return &b }}

func castOpener(t *Tensor) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		r, err := t.Open()
		if err != nil {
			return nil, err
		}
		c := &castReader{r: r, dt: t.DType, left: t.Len()}
		if from, ok := r.(io.ReaderAt); ok {
			return &castReaderAt{castReader: c, from: from, n: t.Len()}, nil
		}
		return c, nil
	}
}

type castReader struct {
	r       io.ReadCloser
	dt      DType
	left    int64
	in, out []byte
	pos     int
	pooled  *[]byte // the buffers' backing, from castBufs
}

// buffers sets up in and out for the first chunk.
func (c *castReader) buffers() {
	es := int64(c.dt.Size())
	if c.left >= castChunk {
		c.pooled = castBufs.Get().(*[]byte)
		b := *c.pooled
		c.in, c.out = b[:castChunk*es], b[castChunk*8:castChunk*8]
		return
	}
	b := make([]byte, c.left*(es+2))
	c.in, c.out = b[:c.left*es], b[c.left*es:c.left*es]
}

func (c *castReader) Read(p []byte) (int, error) {
	if c.pos == len(c.out) {
		if c.left == 0 {
			return 0, io.EOF
		}
		if c.in == nil {
			c.buffers()
		}
		n := min(c.left, castChunk)
		in := c.in[:n*int64(c.dt.Size())]
		if err := ReadFull(c.r, in); err != nil {
			return 0, err
		}
		c.left -= n
		// A read that takes the whole chunk gets it cast into place.
		if int64(len(p)) >= 2*n {
			return int(2 * n), ConvertToF16(p[:2*n], in, c.dt)
		}
		c.out = c.out[:2*n]
		if err := ConvertToF16(c.out, in, c.dt); err != nil {
			return 0, err
		}
		c.pos = 0
	}
	n := copy(p, c.out[c.pos:])
	c.pos += n
	return n, nil
}

// castReaderAt is the cast of a tensor whose reader reads at any offset:
// it does too, so that pieces of one tensor can be cast on several cores.
type castReaderAt struct {
	*castReader
	from io.ReaderAt
	n    int64 // elements
}

// ReadAt casts the elements that bytes [off, off+len(p)) of the float16
// tensor hold, reading them where they are in the source, a chunk at a
// time into a buffer of its own: calls may run at once.
func (c *castReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("format: negative offset")
	}
	size := 2 * c.n
	if off >= size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), size-off)
	es := int64(c.dt.Size())
	pooled := castBufs.Get().(*[]byte)
	defer castBufs.Put(pooled)
	buf := *pooled
	var done int64
	for done < want {
		pos := off + done
		first := pos / 2
		k := min(castChunk, (pos+want-done+1)/2-first) // elements, the first and last maybe in part
		in := buf[:k*es]
		if n, err := c.from.ReadAt(in, first*es); n < len(in) {
			if err == nil || err == io.EOF {
				err = ErrShortData
			}
			return int(done), err
		}
		if pos%2 == 0 && want-done >= 2*k { // whole elements: cast into place
			if err := ConvertToF16(p[done:done+2*k], in, c.dt); err != nil {
				return int(done), err
			}
			done += 2 * k
			continue
		}
		out := buf[castChunk*8 : castChunk*8+2*k]
		if err := ConvertToF16(out, in, c.dt); err != nil {
			return int(done), err
		}
		done += int64(copy(p[done:want], out[pos-2*first:]))
	}
	if want < int64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

func (c *castReader) Close() error {
	if c.pooled != nil {
		castBufs.Put(c.pooled)
		c.pooled, c.in, c.out = nil, nil, nil
	}
	return c.r.Close()
}

// transposeLast2 swaps the last two dimensions, reading the tensor whole.
func transposeLast2(t *Tensor) (*Tensor, error) {
	r := len(t.Shape)
	shape := append([]int64(nil), t.Shape...)
	rows, cols := shape[r-2], shape[r-1]
	shape[r-2], shape[r-1] = cols, rows
	es := int64(t.DType.Size())
	if es == 0 {
		return nil, fmt.Errorf("tensor %s: cannot transpose %v", Quote(t.Name), t.DType)
	}
	nt, err := NewTensor(t.Name, t.DType, shape, func() (io.ReadCloser, error) {
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		out := make([]byte, len(b))
		mat := rows * cols * es
		for base := int64(0); base < int64(len(b)); base += mat {
			transpose(out[base:base+mat], b[base:base+mat], int(rows), int(cols), int(es))
		}
		return Computed(out), nil
	})
	if err == nil && t.Region != "" {
		nt.Region = t.Region + "+T" // the same bytes transposed alike: tied LoRA matrices stay tied
	}
	return nt, err
}

// transposeTile is the side of the tiles transpose moves: each writes
// transposeTile runs of dst in turn, reading as many rows of src, which
// stay in cache while it does.
const transposeTile = 32

// transpose writes the rows × cols matrix src, of es-byte elements, into
// dst transposed.
func transpose(dst, src []byte, rows, cols, es int) {
	for j0 := 0; j0 < cols; j0 += transposeTile {
		for i0 := 0; i0 < rows; i0 += transposeTile {
			i1, j1 := min(i0+transposeTile, rows), min(j0+transposeTile, cols)
			for j := j0; j < j1; j++ {
				d := dst[(j*rows+i0)*es : (j*rows+i1)*es]
				at, step := (i0*cols+j)*es, cols*es // src's element (i0, j), and the next row's
				switch es {                         // whole-element moves for the common sizes
				case 2:
					for k := 0; k < len(d); k, at = k+2, at+step {
						*(*[2]byte)(d[k:]) = *(*[2]byte)(src[at:])
					}
				case 4:
					for k := 0; k < len(d); k, at = k+4, at+step {
						*(*[4]byte)(d[k:]) = *(*[4]byte)(src[at:])
					}
				default:
					for k := 0; k < len(d); k, at = k+es, at+step {
						copy(d[k:k+es], src[at:])
					}
				}
			}
		}
	}
}

// repeatColumns turns a vector of H values into an [H, n] matrix, each
// value repeated n times, as web-rwkv does for v5.1's per-head decay.
func repeatColumns(t *Tensor, n int64) (*Tensor, error) {
	es := int64(t.DType.Size())
	if es == 0 || n <= 0 {
		return nil, fmt.Errorf("tensor %s: cannot repeat %v", Quote(t.Name), t.DType)
	}
	return NewTensor(t.Name, t.DType, []int64{t.Shape[0], n}, func() (io.ReadCloser, error) {
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, int64(len(b))*n)
		for i := int64(0); i < int64(len(b)); i += es {
			for range n {
				out = append(out, b[i:i+es]...)
			}
		}
		return Computed(out), nil
	})
}
