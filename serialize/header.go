package serialize

import (
	"bytes"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rwkvkit/rwkvkit/format"
)

// decodeHeader decodes the header object hb (already known to be one
// complete map of this major version, with a verified checksum). Unknown
// fields are skipped; missing required ones are errors.
func decodeHeader(hb []byte) (*Header, error) {
	br := bytes.NewReader(hb)
	x := &dec{d: msgpack.NewDecoder(br), left: br.Len}
	h := &Header{}
	seen := map[string]bool{}
	err := x.fields("header", func(key string) error {
		seen[key] = true
		var err error
		switch key {
		case "format":
			_, err = x.str("format", 64)
		case "format_version":
			h.Major, err = x.int("format_version")
		case "format_minor":
			h.Minor, err = x.int("format_minor")
		case "chunk_size":
			h.ChunkSize, err = x.nonNeg("chunk_size", MaxChunkSize)
			if err == nil && h.ChunkSize == 0 {
				err = fmt.Errorf("%w: chunk_size is 0", ErrCorrupt)
			}
		case "model":
			if !x.null() {
				h.Model, err = decodeModel(x)
			}
		case "state":
			if !x.null() {
				h.State, err = decodeState(x)
			}
		case "provenance":
			if !x.null() {
				err = decodeProvenance(x, &h.Provenance)
			}
		case "metadata":
			h.Metadata, err = x.strMap("metadata")
		case "tensors":
			h.Tensors, err = decodeTensors(x)
		default:
			return errUnknown
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rkv: %w", err)
	}
	for _, k := range []string{"chunk_size", "tensors"} {
		if !seen[k] {
			return nil, fmt.Errorf("rkv: %w: the header has no %q", ErrCorrupt, k)
		}
	}
	return h, nil
}

func decodeTensors(x *dec) ([]TensorInfo, error) {
	n, err := x.arrLen("tensors", MaxTensors)
	if err != nil {
		return nil, err
	}
	ts := make([]TensorInfo, 0, min(n, 1024))
	names := make(map[string]bool, min(n, 1024))
	for i := range n {
		t, err := decodeTensor(x, i)
		if err != nil {
			return nil, err
		}
		if names[t.Name] {
			return nil, fmt.Errorf("%w: tensor %s appears twice", ErrCorrupt, format.Quote(t.Name))
		}
		names[t.Name] = true
		ts = append(ts, t)
	}
	return ts, nil
}

func decodeTensor(x *dec, i int) (TensorInfo, error) {
	var t TensorInfo
	what := fmt.Sprintf("tensors[%d]", i)
	var dtype string
	var haveShape, haveOffset, haveLength bool
	scale := format.F16.String()
	err := x.fields(what, func(key string) error {
		var err error
		switch key {
		case "name":
			t.Name, err = x.str(what+".name", MaxNameLen)
			what = "tensor " + format.Quote(t.Name)
		case "dtype":
			dtype, err = x.str(what+".dtype", 64)
		case "shape":
			haveShape = true
			var r int
			if r, err = x.arrLen(what+".shape", format.MaxRank); err != nil {
				return err
			}
			t.Shape = make([]int64, r)
			for j := range t.Shape {
				if t.Shape[j], err = x.nonNeg(what+".shape", math.MaxInt64); err != nil {
					return err
				}
			}
		case "offset":
			haveOffset = true
			t.Offset, err = x.nonNeg(what+".offset", math.MaxInt64)
		case "length":
			haveLength = true
			t.Length, err = x.nonNeg(what+".length", math.MaxInt64)
		case "quant":
			if x.null() {
				return nil
			}
			err = x.fields(what+".quant", func(key string) error {
				var err error
				switch key {
				case "block_size":
					var b int64
					b, err = x.nonNeg(what+".quant.block_size", math.MaxInt32)
					t.BlockSize = int(b)
				case "scale_dtype":
					scale, err = x.str(what+".quant.scale_dtype", 64)
				case "table":
					var n int
					if n, err = x.arrLen(what+".quant.table", 256); err != nil {
						return err
					}
					t.Table = make([]float32, n)
					for j := range t.Table {
						var f float64
						f, err = x.float(what + ".quant.table")
						t.Table[j] = float32(f)
						if err != nil {
							return err
						}
					}
				default:
					return errUnknown
				}
				return err
			})
		default:
			return errUnknown
		}
		return err
	})
	if err != nil {
		return t, err
	}
	if t.Name == "" || dtype == "" || !haveShape || !haveOffset || !haveLength {
		return t, fmt.Errorf("%w: %s lacks one of name, dtype, shape, offset, length", ErrCorrupt, what)
	}
	if t.DType, err = format.ParseDType(dtype); err != nil {
		return t, fmt.Errorf("%w: %s: %v (this reader may be too old for it)", ErrCorrupt, what, err)
	}
	n, err := format.NumElements(t.Shape)
	if err != nil {
		return t, fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
	}
	want, err := t.DType.StorageSize(n)
	if err != nil || want != t.Length {
		return t, fmt.Errorf("%w: %s: %v of shape %v is not %d bytes", ErrCorrupt, what, t.DType, t.Shape, t.Length)
	}
	return t, checkQuant(&t, what, scale)
}

// checkQuant refuses quantization parameters other than those the storage
// kind means: loading such a tensor would silently compute other weights.
func checkQuant(t *TensorInfo, what, scale string) error {
	bs := blockSize(t.DType)
	if bs == 0 {
		return nil
	}
	if t.BlockSize != bs {
		return fmt.Errorf("%w: %s: %v with block size %d, not %d", ErrCorrupt, what, t.DType, t.BlockSize, bs)
	}
	if scale != format.F16.String() {
		return fmt.Errorf("%w: %s: %v with %s scales, not F16", ErrCorrupt, what, t.DType, scale)
	}
	if table := codeTable(t.DType); table != nil {
		if len(t.Table) != len(table) {
			return fmt.Errorf("%w: %s: %v table of %d values, not 16", ErrCorrupt, what, t.DType, len(t.Table))
		}
		for i, v := range table {
			if math.Float32bits(t.Table[i]) != math.Float32bits(v) {
				return fmt.Errorf("%w: %s: %v table value %d is %v, not %v", ErrCorrupt, what, t.DType, i, t.Table[i], v)
			}
		}
	}
	return nil
}

func decodeState(x *dec) (*StateInfo, error) {
	s := &StateInfo{}
	ints := map[string]*int{"layers": &s.Layers, "embed": &s.Embed, "heads": &s.Heads, "head_size": &s.HeadSize}
	err := decodeShape(x, "state", ints, &s.Version, &s.Layout, nil)
	if err == nil {
		if verr := s.validate(); verr != nil {
			err = fmt.Errorf("%w: %w", ErrCorrupt, verr)
		}
	}
	return s, err
}

func decodeModel(x *dec) (*format.ModelInfo, error) {
	m := &format.ModelInfo{}
	ints := map[string]*int{
		"layers": &m.Layers, "embed": &m.Embed, "heads": &m.Heads, "head_size": &m.HeadSize,
		"vocab": &m.Vocab, "ffn": &m.FFN, "mix_lora": &m.MixLoRA, "decay_lora": &m.DecayLoRA,
		"a_lora": &m.ALoRA, "v_lora": &m.VLoRA, "g_lora": &m.GLoRA,
	}
	err := decodeShape(x, "model", ints, &m.Version, &m.Layout, func(key string) (err error) {
		if key != "params" {
			return errUnknown
		}
		m.Params, err = x.nonNeg("model.params", math.MaxInt64)
		return err
	})
	return m, err
}

// decodeShape decodes a map of a model's shape (the model and state maps):
// the dimensions ints, version and layout; other decodes any other key
// (nil: none is known).
func decodeShape(x *dec, what string, ints map[string]*int, v *format.Version, l *format.Layout, other func(key string) error) error {
	return x.fields(what, func(key string) error {
		if p, ok := ints[key]; ok {
			n, err := x.nonNeg(what+"."+key, math.MaxInt32)
			*p = int(n)
			return err
		}
		switch key {
		case "version":
			s, err := x.str(what+".version", 64)
			*v = format.Version(s)
			return err
		case "layout":
			s, err := x.str(what+".layout", 64)
			if err != nil {
				return err
			}
			switch s {
			case format.LayoutWebRWKV.String():
				*l = format.LayoutWebRWKV
			case format.LayoutRWKVLM.String():
				*l = format.LayoutRWKVLM
			default:
				return fmt.Errorf("%w: %s.layout %s is unknown", ErrCorrupt, what, format.Quote(s))
			}
			return nil
		}
		if other == nil {
			return errUnknown
		}
		return other(key)
	})
}

func decodeDigest(x *dec, what string, d *FileDigest, alpha *float64) error {
	return x.fields(what, func(key string) error {
		var err error
		switch key {
		case "name":
			d.Name, err = x.str(what+".name", MaxNameLen)
		case "size":
			d.Size, err = x.nonNeg(what+".size", math.MaxInt64)
		case "sha256":
			d.SHA256, err = x.str(what+".sha256", 128)
		case "alpha":
			if alpha == nil {
				return errUnknown
			}
			*alpha, err = x.float(what + ".alpha")
		default:
			return errUnknown
		}
		return err
	})
}

func decodeProvenance(x *dec, p *Provenance) error {
	return x.fields("provenance", func(key string) error {
		var err error
		switch key {
		case "tool":
			p.Tool, err = x.str("provenance.tool", MaxStringLen)
		case "tool_version":
			p.ToolVersion, err = x.str("provenance.tool_version", MaxStringLen)
		case "sources", "loras":
			var n int
			if n, err = x.arrLen("provenance."+key, MaxEntries); err != nil {
				return err
			}
			for i := range n {
				what := fmt.Sprintf("provenance.%s[%d]", key, i)
				if key == "sources" {
					var d FileDigest
					err = decodeDigest(x, what, &d, nil)
					p.Sources = append(p.Sources, d)
				} else {
					var l LoRA
					err = decodeDigest(x, what, &l.FileDigest, &l.Alpha)
					p.LoRAs = append(p.LoRAs, l)
				}
				if err != nil {
					return err
				}
			}
		case "quantization":
			if x.null() {
				return nil
			}
			q := &p.Quantization
			err = x.fields("provenance.quantization", func(key string) error {
				var err error
				switch key {
				case "int8":
					q.Int8, err = x.str("provenance.quantization.int8", MaxStringLen)
				case "nf4":
					q.NF4, err = x.str("provenance.quantization.nf4", MaxStringLen)
				case "sf4":
					q.SF4, err = x.str("provenance.quantization.sf4", MaxStringLen)
				case "plan":
					q.Plan, err = x.str("provenance.quantization.plan", MaxStringLen)
				case "device":
					q.Device, err = x.str("provenance.quantization.device", MaxStringLen)
				default:
					return errUnknown
				}
				return err
			})
		case "lora_patterns":
			var n int
			if n, err = x.arrLen("provenance.lora_patterns", MaxEntries); err != nil {
				return err
			}
			for i := range n {
				what := fmt.Sprintf("provenance.lora_patterns[%d]", i)
				var lp LoRAPattern
				err = x.fields(what, func(key string) error {
					var err error
					switch key {
					case "regexp":
						lp.Regexp, err = x.str(what+".regexp", MaxStringLen)
					case "alpha":
						lp.Alpha, err = x.float(what + ".alpha")
					default:
						return errUnknown
					}
					return err
				})
				if err != nil {
					return err
				}
				p.LoRAPatterns = append(p.LoRAPatterns, lp)
			}
		case "extra":
			p.Extra, err = x.strMap("provenance.extra")
		default:
			return errUnknown
		}
		return err
	})
}
