package synth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/rwkvkit/rwkvkit/format"
)

// WritePTH writes src as a PyTorch zip checkpoint (torch.save, protocol 2):
// an OrderedDict of tensors, one storage record per tensor, stored
// uncompressed with its data 64-byte aligned as torch writes it.
func WritePTH(w io.Writer, src *format.Source) error { return WriteTiedPTH(w, src, nil) }

// WriteTiedPTH writes src as WritePTH does, except that each tensor named
// by a key of tied is saved as torch saves tied weights: as a second view
// of the storage of the tensor the value names, which must have its dtype
// and size. Its own bytes are not written; it reads the other's.
func WriteTiedPTH(w io.Writer, src *format.Source, tied map[string]string) error {
	index := map[string]int{}
	for i, t := range src.Tensors {
		index[t.Name] = i
	}
	owner := make([]int, len(src.Tensors)) // the tensor whose storage each one views
	for i, t := range src.Tensors {
		owner[i] = i
		if of, ok := tied[t.Name]; ok {
			j, ok := index[of]
			if !ok || tied[of] != "" || src.Tensors[j].DType != t.DType || src.Tensors[j].Size() != t.Size() {
				return fmt.Errorf("tensor %q cannot be tied to %q", t.Name, of)
			}
			owner[i] = j
		}
	}
	cw := &countingWriter{w: w}
	zw := zip.NewWriter(cw)
	const dir = "archive/"
	var pkl bytes.Buffer
	pkl.WriteString("\x80\x02")
	global(&pkl, "collections", "OrderedDict")
	pkl.WriteString(")R(") // EMPTY_TUPLE REDUCE MARK
	for i, t := range src.Tensors {
		storage, err := storageName(t.DType)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		unicode(&pkl, t.Name)
		global(&pkl, "torch._utils", "_rebuild_tensor_v2")
		pkl.WriteString("((") // args tuple, persistent id tuple
		unicode(&pkl, "storage")
		global(&pkl, "torch", storage)
		unicode(&pkl, fmt.Sprint(owner[i]))
		unicode(&pkl, "cpu")
		integer(&pkl, t.Len())
		pkl.WriteString("tQ") // TUPLE BINPERSID
		integer(&pkl, 0)      // storage offset
		pkl.WriteString("(")
		for _, d := range t.Shape {
			integer(&pkl, d)
		}
		pkl.WriteString("t(")
		stride := int64(1)
		strides := make([]int64, len(t.Shape))
		for j := len(t.Shape) - 1; j >= 0; j-- {
			strides[j] = stride
			stride *= t.Shape[j]
		}
		for _, s := range strides {
			integer(&pkl, s)
		}
		pkl.WriteString("t\x89") // TUPLE NEWFALSE (requires_grad)
		global(&pkl, "collections", "OrderedDict")
		pkl.WriteString(")RtR") // backward hooks; TUPLE REDUCE
	}
	pkl.WriteString("u.") // SETITEMS STOP
	if err := storeRecord(zw, cw, dir+"data.pkl", bytes.NewReader(pkl.Bytes())); err != nil {
		return err
	}
	if err := storeRecord(zw, cw, dir+"byteorder", bytes.NewReader([]byte("little"))); err != nil {
		return err
	}
	for i, t := range src.Tensors {
		if owner[i] != i {
			continue
		}
		r, err := t.Open()
		if err != nil {
			return err
		}
		err = storeRecord(zw, cw, fmt.Sprintf("%sdata/%d", dir, i), io.LimitReader(r, t.Size()))
		r.Close()
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
	}
	if err := storeRecord(zw, cw, dir+"version", bytes.NewReader([]byte("3\n"))); err != nil {
		return err
	}
	return zw.Close()
}

func storageName(dt format.DType) (string, error) {
	switch dt {
	case format.F32:
		return "FloatStorage", nil
	case format.F16:
		return "HalfStorage", nil
	case format.BF16:
		return "BFloat16Storage", nil
	}
	return "", fmt.Errorf("no torch storage for %v", dt)
}

// storeRecord adds an uncompressed record whose data starts at a multiple of
// 64 bytes, padding the local header's extra field as torch does.
func storeRecord(zw *zip.Writer, cw *countingWriter, name string, r io.Reader) error {
	if err := zw.Flush(); err != nil {
		return err
	}
	const localHeader = 30
	pos := cw.n + localHeader + int64(len(name))
	pad := (64 - (pos+4)%64) % 64 // 4 bytes of extra-field header
	extra := make([]byte, 4+pad)
	binary.LittleEndian.PutUint16(extra, 0x4246) // "FB", torch's padding id
	binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Extra: extra})
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func global(b *bytes.Buffer, module, name string) {
	fmt.Fprintf(b, "c%s\n%s\n", module, name)
}

func unicode(b *bytes.Buffer, s string) {
	b.WriteByte('X')
	binary.Write(b, binary.LittleEndian, uint32(len(s)))
	b.WriteString(s)
}

func integer(b *bytes.Buffer, v int64) {
	if v >= 0 && v <= math.MaxInt32 {
		b.WriteByte('J')
		binary.Write(b, binary.LittleEndian, int32(v))
		return
	}
	b.WriteString("\x8a\x08") // LONG1, 8 bytes
	binary.Write(b, binary.LittleEndian, v)
}
