package serialize

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/format"
)

// Options tune Write. A nil *Options means the defaults.
type Options struct {
	// Model is recorded as the model description. Nil means the one
	// format.Detect finds in the source; if it finds none (the source is
	// not an RWKV model), the artifact records none.
	Model *format.ModelInfo

	Provenance Provenance

	// State, when set, makes the file a state artifact (format 1.1) that
	// holds the recurrent state it describes instead of a model: no model
	// description is recorded.
	State *StateInfo

	// Finalize, if set, is called once the payloads are written; the
	// provenance it returns replaces Provenance in the header, which is
	// rewritten in place. So a digest of an input can be computed while the
	// artifact is being written: Provenance then holds placeholders of the
	// final lengths (64 characters for a SHA-256), since the header must not
	// change size. The writer must then be an io.WriterAt.
	Finalize func() (Provenance, error)

	// Metadata is recorded as the artifact's string metadata; nil means the
	// source's own metadata.
	Metadata map[string]string

	// ChunkSize is the largest bin object a payload is split into; 0 means
	// DefaultChunkSize. It must be at most MaxChunkSize (what bin 32 holds).
	ChunkSize int64

	// Progress, if set, is called after the header and after every buffer
	// of payload with the bytes written so far and the file's total size.
	Progress func(written, total int64)

	// NoSync has WriteFile commit the file without waiting for it to reach
	// the disk (atomicfile.Options.NoSync): faster, but not durable.
	NoSync bool
}

// copyBufSize is the buffer a payload streams through: memory for writing
// does not grow with the tensors.
const copyBufSize = 1 << 20

// A plan is an artifact laid out before any byte is written: the header
// and the index's size follow from names, dtypes and shapes alone.
type plan struct {
	header   []byte
	tensors  []*format.Tensor
	offsets  []int64
	chunk    int64
	indexOff int64
	total    int64
}

// Write writes src to w as an .rkv artifact. It streams: the header is
// computed from the tensor table, then each tensor is copied through a
// fixed buffer while its xxhash64 is computed, and the checksums go into the
// index at the end. A tensor whose reader yields more or fewer bytes than
// its Size is an error. w needs no Seek: the file is written front to back.
func Write(w io.Writer, src *format.Source, opts *Options) error {
	if opts == nil {
		opts = &Options{}
	}
	p, err := layout(src, opts)
	if err != nil {
		return err
	}
	cw := &countWriter{w: w, total: p.total, progress: opts.Progress}
	if _, err := cw.Write(p.header); err != nil {
		return fmt.Errorf("rkv: writing header: %w", err)
	}
	sums := make([]uint64, len(p.tensors))
	buf := make([]byte, copyBufSize)
	for i, t := range p.tensors {
		if cw.n != p.offsets[i] {
			return fmt.Errorf("rkv: tensor %q: at offset %d, planned %d", t.Name, cw.n, p.offsets[i])
		}
		if sums[i], err = copyPayload(cw, t, p.chunk, buf); err != nil {
			return fmt.Errorf("rkv: %w", format.TensorErr(t.Name, err))
		}
	}
	if cw.n != p.indexOff {
		return fmt.Errorf("rkv: index at offset %d, planned %d", cw.n, p.indexOff)
	}
	header := p.header
	if opts.Finalize != nil {
		if header, err = finalizeHeader(w, src, opts, p); err != nil {
			return err
		}
	}
	tail := encodeIndex(xxhash.Sum64(header), sums)
	tail = binary.BigEndian.AppendUint64(append(tail, 0xcf), uint64(p.indexOff))
	if _, err := cw.Write(tail); err != nil {
		return fmt.Errorf("rkv: writing index: %w", err)
	}
	return nil
}

// finalizeHeader re-encodes the header with the provenance Finalize gives
// and writes it over the first one.
func finalizeHeader(w io.Writer, src *format.Source, opts *Options, p *plan) ([]byte, error) {
	wa, ok := w.(io.WriterAt)
	if !ok {
		return nil, fmt.Errorf("rkv: Finalize needs a writer that can write at an offset")
	}
	prov, err := opts.Finalize()
	if err != nil {
		return nil, err
	}
	final := *opts
	final.Provenance, final.Finalize = prov, nil
	q, err := layout(src, &final)
	if err != nil {
		return nil, err
	}
	if len(q.header) != len(p.header) {
		return nil, fmt.Errorf("rkv: the final provenance changes the header's size (%d bytes, planned %d)", len(q.header), len(p.header))
	}
	if _, err := wa.WriteAt(q.header, 0); err != nil {
		return nil, fmt.Errorf("rkv: rewriting header: %w", err)
	}
	return q.header, nil
}

// WriteFile writes src to path through a temporary file in the same folder
// that is synced and renamed at the end (package atomicfile). An existing
// file is replaced only if force is set, and only if it is a regular file; a
// path whose extension names another format (.st, .pth) is refused. On any
// error, or when ctx is cancelled, nothing is left behind and an existing
// file is untouched.
func WriteFile(ctx context.Context, path string, src *format.Source, force bool, opts *Options) error {
	if err := format.CheckExtension(path, "rkv"); err != nil {
		return err
	}
	if opts == nil {
		opts = &Options{}
	}
	if _, err := layout(src, opts); err != nil {
		return err // before creating anything
	}
	return atomicfile.WriteFile(ctx, path, atomicfile.Options{Force: force, NoSync: opts.NoSync}, func(w io.Writer) error {
		return Write(w, src, opts)
	})
}

// copyPayload writes t's bytes as bin 32 objects of at most chunk bytes and
// returns their xxhash64.
func copyPayload(w io.Writer, t *format.Tensor, chunk int64, buf []byte) (uint64, error) {
	r, err := t.Open()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	h := xxhash.New()
	left := t.Size()
	for c := numChunks(left, chunk); c > 0; c-- {
		n := min(left, chunk)
		var bh [binHeaderLen]byte
		bh[0] = 0xc6
		binary.BigEndian.PutUint32(bh[1:], uint32(n))
		if _, err := w.Write(bh[:]); err != nil {
			return 0, err
		}
		for n > 0 {
			b := buf[:min(n, int64(len(buf)))]
			if _, err := io.ReadFull(r, b); err != nil {
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					err = fmt.Errorf("%w: source ended %d bytes early", format.ErrShortData, left)
				}
				return 0, err
			}
			h.Write(b)
			if _, err := w.Write(b); err != nil {
				return 0, err
			}
			n -= int64(len(b))
			left -= int64(len(b))
		}
	}
	var one [1]byte
	if k, _ := io.ReadFull(r, one[:]); k > 0 {
		return 0, fmt.Errorf("source yields more than the %d bytes its dtype and shape call for", t.Size())
	}
	return h.Sum64(), nil
}

// layout checks src against the format's limits and plans the file.
func layout(src *format.Source, opts *Options) (*plan, error) {
	if src == nil {
		return nil, errors.New("rkv: no source")
	}
	if len(src.Tensors) > MaxTensors {
		return nil, fmt.Errorf("rkv: %d tensors, more than the %d an artifact holds", len(src.Tensors), MaxTensors)
	}
	chunk := opts.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	if chunk < 1 || chunk > MaxChunkSize {
		return nil, fmt.Errorf("rkv: chunk size %d outside 1..%d", chunk, int64(MaxChunkSize))
	}
	meta := opts.Metadata
	if meta == nil {
		meta = src.Metadata
	}
	if err := checkMetadata(meta); err != nil {
		return nil, err
	}
	if err := opts.Provenance.validate(); err != nil {
		return nil, fmt.Errorf("rkv: %w", err)
	}
	seen := make(map[string]bool, len(src.Tensors))
	for _, t := range src.Tensors {
		if t.Name == "" || len(t.Name) > MaxNameLen || !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("rkv: tensor name %.40q is empty, longer than %d bytes or not UTF-8", t.Name, MaxNameLen)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("rkv: tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
		if _, err := format.ParseDType(t.DType.String()); err != nil {
			return nil, fmt.Errorf("rkv: tensor %q: %w", t.Name, err)
		}
		want, err := t.DType.StorageSize(t.Len())
		if err != nil || want != t.Size() || len(t.Shape) > format.MaxRank {
			return nil, fmt.Errorf("rkv: tensor %q: %v of shape %v is not %d bytes", t.Name, t.DType, t.Shape, t.Size())
		}
	}
	model := opts.Model
	if opts.State != nil {
		if err := opts.State.validate(); err != nil {
			return nil, fmt.Errorf("rkv: %w", err)
		}
		model = nil
	} else if model == nil {
		if info, err := format.Detect(src); err == nil {
			model = &info
		}
	}
	offsets := make([]int64, len(src.Tensors))
	// Offsets and lengths are encoded fixed-width, so the header's length
	// does not depend on them: encode once to measure, once for real.
	hdr := encodeHeader(chunk, model, opts.State, &opts.Provenance, meta, src.Tensors, offsets)
	hdrLen := len(hdr)
	if hdrLen > MaxHeaderSize {
		return nil, fmt.Errorf("rkv: header is %d bytes, more than %d", hdrLen, MaxHeaderSize)
	}
	pos := int64(hdrLen)
	for i, t := range src.Tensors {
		offsets[i] = pos
		n := encodedLen(t.Size(), chunk)
		if pos > math.MaxInt64-n-MaxHeaderSize {
			return nil, errors.New("rkv: total size overflows")
		}
		pos += n
	}
	hdr = encodeHeader(chunk, model, opts.State, &opts.Provenance, meta, src.Tensors, offsets)
	if len(hdr) != hdrLen {
		return nil, fmt.Errorf("rkv: header length changed from %d to %d bytes", hdrLen, len(hdr))
	}
	idx := int64(len(encodeIndex(0, make([]uint64, len(src.Tensors)))))
	return &plan{header: hdr, tensors: src.Tensors, offsets: offsets, chunk: chunk,
		indexOff: pos, total: pos + idx + endLen}, nil
}

func checkMetadata(meta map[string]string) error {
	if len(meta) > MaxEntries {
		return fmt.Errorf("rkv: %d metadata entries, more than %d", len(meta), MaxEntries)
	}
	for k, v := range meta {
		if len(k) > MaxNameLen || len(v) > MaxStringLen || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("rkv: metadata %.40q: key or value too long or not UTF-8", k)
		}
	}
	return nil
}

// enc is a msgpack encoder into memory, where writes cannot fail.
type enc struct {
	buf bytes.Buffer
	e   *msgpack.Encoder
}

func newEnc() *enc {
	x := &enc{}
	x.e = msgpack.NewEncoder(&x.buf)
	return x
}

func (x *enc) str(s string)  { _ = x.e.EncodeString(s) }
func (x *enc) int(n int64)   { _ = x.e.EncodeInt(n) }
func (x *enc) u64(n uint64)  { _ = x.e.EncodeUint64(n) } // always 9 bytes
func (x *enc) arrLen(n int)  { _ = x.e.EncodeArrayLen(n) }
func (x *enc) f32(f float32) { _ = x.e.EncodeFloat32(f) }
func (x *enc) f64(f float64) { _ = x.e.EncodeFloat64(f) }

// A field is one entry of a map: its key and the encoding of its value.
type field struct {
	key string
	val func()
}

// fields encodes a map of the fields, in order; it counts them, so an
// optional field is one that is appended or not.
func (x *enc) fields(fs ...field) {
	_ = x.e.EncodeMapLen(len(fs))
	for _, f := range fs {
		x.str(f.key)
		f.val()
	}
}

func (x *enc) strMap(m map[string]string) {
	_ = x.e.EncodeMapLen(len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		x.str(k)
		x.str(m[k])
	}
}

// strField, intField and u64Field are fields of one value.
func (x *enc) strField(k, v string) field        { return field{k, func() { x.str(v) }} }
func (x *enc) intField(k string, v int64) field  { return field{k, func() { x.int(v) }} }
func (x *enc) u64Field(k string, v uint64) field { return field{k, func() { x.u64(v) }} }

// encodeHeader encodes the header of a model artifact (model may be nil)
// or, when state is set, of a state artifact.
func encodeHeader(chunk int64, model *format.ModelInfo, state *StateInfo, prov *Provenance, meta map[string]string,
	tensors []*format.Tensor, offsets []int64) []byte {
	x := newEnc()
	// A file says the lowest minor version whose keys it uses, so that a
	// model artifact reads as 1.0 wherever 1.0 is read.
	minor := int64(0)
	if state != nil {
		minor = minorState
	}
	// format and format_version come first, so that a reader can refuse a
	// newer major version before it meets fields it cannot parse.
	fs := []field{
		x.strField("format", Magic),
		x.intField("format_version", FormatVersion),
		x.intField("format_minor", minor),
		x.intField("chunk_size", chunk),
	}
	if model != nil {
		fs = append(fs, field{"model", func() { encodeModel(x, model) }})
	}
	if state != nil {
		fs = append(fs, field{"state", func() { encodeState(x, state) }})
	}
	fs = append(fs,
		field{"provenance", func() { encodeProvenance(x, prov) }},
		field{"metadata", func() { x.strMap(meta) }},
		field{"tensors", func() {
			x.arrLen(len(tensors))
			for i, t := range tensors {
				encodeTensor(x, t, offsets[i])
			}
		}})
	x.fields(fs...)
	return x.buf.Bytes()
}

func encodeTensor(x *enc, t *format.Tensor, offset int64) {
	fs := []field{
		x.strField("name", t.Name),
		x.strField("dtype", t.DType.String()),
		{"shape", func() {
			x.arrLen(len(t.Shape))
			for _, d := range t.Shape {
				x.int(d)
			}
		}},
		x.u64Field("offset", uint64(offset)),
		x.u64Field("length", uint64(t.Size())),
	}
	if bs := blockSize(t.DType); bs > 0 {
		q := []field{x.intField("block_size", int64(bs)), x.strField("scale_dtype", format.F16.String())}
		if table := codeTable(t.DType); table != nil {
			q = append(q, field{"table", func() {
				x.arrLen(len(table))
				for _, v := range table {
					x.f32(v)
				}
			}})
		}
		fs = append(fs, field{"quant", func() { x.fields(q...) }})
	}
	x.fields(fs...)
}

func encodeModel(x *enc, m *format.ModelInfo) {
	x.fields(
		x.strField("version", string(m.Version)),
		x.strField("layout", m.Layout.String()),
		x.intField("layers", int64(m.Layers)), x.intField("embed", int64(m.Embed)), x.intField("heads", int64(m.Heads)),
		x.intField("head_size", int64(m.HeadSize)), x.intField("vocab", int64(m.Vocab)), x.intField("ffn", int64(m.FFN)),
		x.intField("mix_lora", int64(m.MixLoRA)), x.intField("decay_lora", int64(m.DecayLoRA)), x.intField("a_lora", int64(m.ALoRA)),
		x.intField("v_lora", int64(m.VLoRA)), x.intField("g_lora", int64(m.GLoRA)), x.intField("params", m.Params))
}

func encodeState(x *enc, s *StateInfo) {
	x.fields(
		x.strField("version", string(s.Version)),
		x.strField("layout", s.Layout.String()),
		x.intField("layers", int64(s.Layers)), x.intField("embed", int64(s.Embed)),
		x.intField("heads", int64(s.Heads)), x.intField("head_size", int64(s.HeadSize)))
}

func encodeDigest(x *enc, d FileDigest, alpha *float64) {
	fs := []field{x.strField("name", d.Name), x.intField("size", d.Size), x.strField("sha256", d.SHA256)}
	if alpha != nil {
		fs = append(fs, field{"alpha", func() { x.f64(*alpha) }})
	}
	x.fields(fs...)
}

func encodeProvenance(x *enc, p *Provenance) {
	fs := []field{
		x.strField("tool", p.Tool),
		x.strField("tool_version", p.ToolVersion),
		{"sources", func() {
			x.arrLen(len(p.Sources))
			for _, d := range p.Sources {
				encodeDigest(x, d, nil)
			}
		}},
		{"loras", func() {
			x.arrLen(len(p.LoRAs))
			for _, l := range p.LoRAs {
				encodeDigest(x, l.FileDigest, &l.Alpha)
			}
		}},
	}
	if len(p.LoRAPatterns) > 0 { // absent otherwise, so that other artifacts keep their bytes
		fs = append(fs, field{"lora_patterns", func() {
			x.arrLen(len(p.LoRAPatterns))
			for _, lp := range p.LoRAPatterns {
				x.fields(x.strField("regexp", lp.Regexp), field{"alpha", func() { x.f64(lp.Alpha) }})
			}
		}})
	}
	fs = append(fs,
		field{"quantization", func() {
			q := map[string]string{"int8": p.Quantization.Int8, "nf4": p.Quantization.NF4, "device": p.Quantization.Device}
			for k, v := range map[string]string{"sf4": p.Quantization.SF4, "plan": p.Quantization.Plan} {
				if v != "" { // absent otherwise, so that other artifacts keep their bytes
					q[k] = v
				}
			}
			x.strMap(q)
		}},
		field{"extra", func() { x.strMap(p.Extra) }})
	x.fields(fs...)
}

// encodeIndex encodes the index object; its checksums are fixed-width, so
// its length is known before they are.
func encodeIndex(header uint64, tensors []uint64) []byte {
	x := newEnc()
	x.fields(
		x.u64Field("header_xxhash64", header),
		field{"tensor_xxhash64", func() {
			x.arrLen(len(tensors))
			for _, s := range tensors {
				x.u64(s)
			}
		}})
	return x.buf.Bytes()
}

// countWriter counts what it writes and reports progress.
type countWriter struct {
	w        io.Writer
	n, total int64
	progress func(written, total int64)
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.progress != nil {
		c.progress(c.n, c.total)
	}
	return n, err
}
