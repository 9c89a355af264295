package safetensors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/format"
)

// ErrQuantized is returned by Write for a block-quantized tensor, whose
// layout safetensors has no dtype for (store it in .rkv instead).
var ErrQuantized = errors.New("quantized tensors have no safetensors dtype")

// Options tune Write. A nil *Options means the defaults.
type Options struct {
	// Metadata is written as the header's __metadata__, keys sorted. Nil
	// means {"format": "pt"}, what converters of PyTorch models write (and
	// transformers requires); an empty non-nil map writes no __metadata__.
	// A source's own metadata is not carried over unless passed here.
	Metadata map[string]string

	// Progress, if set, is called after the header and after every chunk
	// of data with the bytes written so far and the file's total size.
	Progress func(written, total int64)

	// NoSync has WriteFile commit the file without waiting for it to reach
	// the disk (atomicfile.Options.NoSync): faster, but not durable.
	NoSync bool
}

var defaultMetadata = map[string]string{"format": "pt"}

// Write writes src to w as a safetensors file laid out as the reference
// writer lays it out: tensors sorted by descending dtype alignment, then by
// name; the JSON header compact, with __metadata__ first, padded with
// spaces so that the data starts at a multiple of 8. The header is computed
// from dtypes and shapes alone; then each tensor is copied in turn, so
// memory stays small whatever the model's size. A tensor whose reader
// yields more or fewer bytes than its Size is an error.
func Write(w io.Writer, src *format.Source, opts *Options) error {
	if opts == nil {
		opts = &Options{}
	}
	header, tensors, err := layout(src, opts.Metadata)
	if err != nil {
		return err
	}
	return write(w, header, tensors, opts)
}

// write writes the header and tensors layout planned.
func write(w io.Writer, header []byte, tensors []*format.Tensor, opts *Options) error {
	total := int64(len(header))
	for _, t := range tensors {
		total += t.Size() // no overflow: layout checked the sum
	}
	pw := &progressWriter{w: w, total: total, progress: opts.Progress}
	if _, err := pw.Write(header); err != nil {
		return fmt.Errorf("safetensors: writing header: %w", err)
	}
	buf := make([]byte, 1<<20)
	for _, t := range tensors {
		if err := copyTensor(pw, t, buf); err != nil {
			return fmt.Errorf("safetensors: %w", format.TensorErr(t.Name, err))
		}
	}
	return nil
}

// WriteFile writes src to path through a temporary file in the same folder
// that is synced and renamed at the end (see package atomicfile). An
// existing file is replaced only if force is set, and only if it is a
// regular file; a path whose extension names another format (.rkv, .pth)
// is refused. On any error, or when ctx is cancelled, nothing is left
// behind and an existing file is untouched.
func WriteFile(ctx context.Context, path string, src *format.Source, force bool, opts *Options) error {
	if err := format.CheckExtension(path, "safetensors"); err != nil {
		return err
	}
	// Planned before anything is created, and once: the header of a file
	// of many tensors is large.
	header, tensors, err := layout(src, optsMetadata(opts))
	if err != nil {
		return err
	}
	if opts == nil {
		opts = &Options{}
	}
	return atomicfile.WriteFile(ctx, path, atomicfile.Options{Force: force, NoSync: opts.NoSync}, func(w io.Writer) error {
		return write(w, header, tensors, opts)
	})
}

func optsMetadata(opts *Options) map[string]string {
	if opts == nil {
		return nil
	}
	return opts.Metadata
}

func copyTensor(w io.Writer, t *format.Tensor, buf []byte) error {
	r, err := t.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	// A longer reader means the tensor's bytes do not match its shape;
	// writing them cut would hide that.
	longer := fmt.Errorf("tensor data longer than its declared %d bytes", t.Size())
	var n int64
	if wt, ok := r.(io.WriterTo); ok {
		// The reader hands over its own buffers (format.Stream's chunks):
		// one copy less.
		n, err = wt.WriteTo(&limitWriter{w: w, left: t.Size(), over: longer})
	} else {
		n, err = io.CopyBuffer(w, io.LimitReader(r, t.Size()), buf)
		if m, _ := r.Read(buf[:1]); err == nil && m > 0 {
			err = longer
		}
	}
	if err != nil {
		return err
	}
	if n < t.Size() {
		return fmt.Errorf("%w: %d of %d bytes", format.ErrShortData, n, t.Size())
	}
	return nil
}

// writeStep is the most bytes limitWriter hands on in one write, so that
// progress is reported every few milliseconds whatever the tensor's size.
const writeStep = 4 << 20

// limitWriter writes the first left bytes written to it to w, at most
// writeStep at a time, and fails with over if there are more.
type limitWriter struct {
	w    io.Writer
	left int64
	over error
}

func (l *limitWriter) Write(p []byte) (int, error) {
	cut := int64(len(p)) > l.left
	if cut {
		p = p[:l.left]
	}
	var n int
	for n < len(p) {
		m, err := l.w.Write(p[n:min(len(p), n+writeStep)])
		n += m
		l.left -= int64(m)
		if err != nil {
			return n, err
		}
	}
	if cut {
		return n, l.over
	}
	return n, nil
}

// layout checks src's tensors and returns the padded header (length prefix
// included) and the tensors in the order their data follows it.
func layout(src *format.Source, metadata map[string]string) ([]byte, []*format.Tensor, error) {
	if metadata == nil {
		metadata = defaultMetadata
	}
	seen := make(map[string]bool, len(src.Tensors))
	for _, t := range src.Tensors {
		switch {
		case t.DType.Quantized():
			return nil, nil, fmt.Errorf("safetensors: tensor %s: %w: %v (save quantized models as .rkv)", format.Quote(t.Name), ErrQuantized, t.DType)
		case !hasOrder(t.DType):
			return nil, nil, fmt.Errorf("safetensors: tensor %s: dtype %v cannot be written", format.Quote(t.Name), t.DType)
		case !utf8.ValidString(t.Name):
			return nil, nil, fmt.Errorf("safetensors: tensor name %s is not valid UTF-8", format.Quote(t.Name))
		case t.Name == "__metadata__":
			return nil, nil, fmt.Errorf("safetensors: a tensor cannot be named __metadata__")
		case seen[t.Name]:
			return nil, nil, fmt.Errorf("safetensors: %w: two tensors named %s", ErrDuplicate, format.Quote(t.Name))
		}
		seen[t.Name] = true
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("safetensors: metadata %s: not valid UTF-8", format.Quote(k))
		}
	}
	tensors := slices.Clone(src.Tensors)
	slices.SortFunc(tensors, func(a, b *format.Tensor) int {
		return cmp.Or(cmp.Compare(order[b.DType], order[a.DType]), cmp.Compare(a.Name, b.Name))
	})

	h := make([]byte, 8, 8+64*len(tensors)+64)
	h = append(h, '{')
	if len(metadata) > 0 {
		h = append(h, `"__metadata__":{`...)
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				h = append(h, ',')
			}
			h = appendString(h, k)
			h = append(h, ':')
			h = appendString(h, metadata[k])
		}
		h = append(h, '}')
	}
	var offset int64
	for i, t := range tensors {
		if i > 0 || len(metadata) > 0 {
			h = append(h, ',')
		}
		if t.Size() > math.MaxInt64-offset {
			return nil, nil, fmt.Errorf("safetensors: %w: the tensors' total size", ErrOverflow)
		}
		h = appendString(h, t.Name)
		h = append(h, `:{"dtype":"`...)
		h = append(h, t.DType.String()...)
		h = append(h, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				h = append(h, ',')
			}
			h = strconv.AppendInt(h, d, 10)
		}
		h = append(h, `],"data_offsets":[`...)
		h = strconv.AppendInt(h, offset, 10)
		h = append(h, ',')
		offset += t.Size()
		h = strconv.AppendInt(h, offset, 10)
		h = append(h, "]}"...)
	}
	h = append(h, '}')
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	n := len(h) - 8
	if n > MaxHeaderSize {
		return nil, nil, fmt.Errorf("safetensors: %w: %d bytes for %d tensors", ErrHeaderTooLarge, n, len(tensors))
	}
	if int64(len(h)) > math.MaxInt64-offset {
		return nil, nil, fmt.Errorf("safetensors: %w: the file's total size", ErrOverflow)
	}
	h[0], h[1], h[2], h[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	h[4], h[5], h[6], h[7] = byte(n>>32), byte(n>>40), byte(n>>48), byte(n>>56)
	return h, tensors, nil
}

func hasOrder(d format.DType) bool {
	_, ok := order[d]
	return ok
}

// appendString appends s as a JSON string escaped the way serde_json (the
// reference writer's encoder) escapes it: quote, backslash and control
// characters only, the five short escapes where they exist and \u00xx in
// lower-case hex otherwise; everything else, non-ASCII included, as is.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// progressWriter counts bytes and reports them.
type progressWriter struct {
	w        io.Writer
	written  int64
	total    int64
	progress func(written, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.written += int64(n)
	if p.progress != nil && n > 0 {
		p.progress(p.written, p.total)
	}
	return n, err
}
