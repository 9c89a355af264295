package synth

import (
	"bytes"
	"slices"
	"strings"

	"github.com/rwkvkit/rwkvkit/format"
)

// Tie returns base with head.weight holding emb.weight's values and every
// tensor of layer 1 that layer 0 has alike (dtype and shape) holding layer
// 0's, and the names so copied, each mapped to the name whose values it
// holds: what WriteTiedPTH saves as views of one storage.
func Tie(base *format.Source) (*format.Source, map[string]string, error) {
	tied := map[string]string{"head.weight": "emb.weight"}
	for _, x := range base.Tensors {
		if rest, ok := strings.CutPrefix(x.Name, "blocks.1."); ok {
			if y := base.Lookup("blocks.0." + rest); y != nil && y.DType == x.DType && slices.Equal(y.Shape, x.Shape) {
				tied[x.Name] = y.Name
			}
		}
	}
	ts := slices.Clone(base.Tensors)
	for i, x := range ts {
		if of, ok := tied[x.Name]; ok {
			y := base.Lookup(of)
			n, err := format.NewTensor(x.Name, y.DType, y.Shape, y.Open)
			if err != nil {
				return nil, nil, err
			}
			ts[i] = n
		}
	}
	return &format.Source{Format: base.Format, Metadata: base.Metadata, Tensors: ts}, tied, nil
}

// ReadTiedPTH saves src as a torch checkpoint, tied as given (see
// WriteTiedPTH), and opens it through the checkpoint reader, as the file
// name (whose extension picks the reader) says; it returns the source and
// the file's size.
func ReadTiedPTH(src *format.Source, tied map[string]string, name string) (*format.Source, int, error) {
	var buf bytes.Buffer
	if err := WriteTiedPTH(&buf, src, tied); err != nil {
		return nil, 0, err
	}
	back, err := format.OpenReaderAt(bytes.NewReader(buf.Bytes()), name)
	if err != nil {
		return nil, 0, err
	}
	return back, buf.Len(), nil
}
