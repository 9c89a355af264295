package gguf

import (
	"bytes"
	"fmt"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/tokenizer"
)

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	tokenNormal  = 1
	tokenControl = 3
	tokenUnused  = 5
)

// worldEOT is the token the converter marks as end of turn: "\n\n".
const worldEOT = 261

func u32(n int) Value         { return Value{Type: Uint32, V: uint32(n)} }
func str(s string) Value      { return Value{Type: String, V: s} }
func f32(x float32) Value     { return Value{Type: Float32, V: x} }
func strs(s []string) Value   { return Value{Type: Array, Elem: String, V: s} }
func ints(s []int32) Value    { return Value{Type: Array, Elem: Int32, V: s} }
func kv(k string, v Value) KV { return KV{k, v} }

// metadata returns the converter's keys for the model (Rwkv6Model and
// Rwkv7Model.set_gguf_parameters, _set_vocab_rwkv_world).
func metadata(info format.ModelInfo, opts *Options, fileType uint32) ([]KV, error) {
	a := arch(info.Version)
	name := opts.Name
	if name == "" {
		name = "RWKV"
	}
	kvs := []KV{
		kv("general.architecture", str(a)),
		kv("general.type", str("model")),
		kv("general.name", str(name)),
		kv(a+".context_length", u32(1048576)), // RWKV has no context limit
		kv(a+".embedding_length", u32(info.Embed)),
		kv(a+".block_count", u32(info.Layers)),
		kv(a+".attention.layer_norm_epsilon", f32(1e-5)),
	}
	if info.Version == format.V6 {
		kvs = append(kvs,
			kv(a+".rescale_every_n_layers", u32(0)), // the weights are written as they are
			kv(a+".wkv.head_size", u32(info.HeadSize)),
			kv(a+".time_mix_extra_dim", u32(info.MixLoRA)),
			kv(a+".time_decay_extra_dim", u32(info.DecayLoRA)))
	} else {
		vLoRA := info.VLoRA
		if vLoRA == 0 { // a one-layer model: layer 0's copies use a's rank
			vLoRA = info.ALoRA
		}
		kvs = append(kvs,
			kv(a+".wkv.head_size", u32(info.HeadSize)),
			kv(a+".attention.decay_lora_rank", u32(info.DecayLoRA)),
			kv(a+".attention.iclr_lora_rank", u32(info.ALoRA)),
			kv(a+".attention.value_residual_mix_lora_rank", u32(vLoRA)),
			kv(a+".attention.gate_lora_rank", u32(info.GLoRA)))
	}
	kvs = append(kvs,
		kv(a+".feed_forward_length", u32(info.FFN)),
		kv("general.file_type", Value{Type: Uint32, V: fileType}),
		kv(a+".attention.head_count", u32(0)), // required by llama.cpp, unused
		kv("general.quantization_version", u32(2)))
	voc, err := vocabulary(info.Vocab)
	if err != nil {
		return nil, err
	}
	return append(kvs, voc...), nil
}

// vocabulary returns the tokenizer keys for a model of vocab tokens: the
// World vocabulary for World models, one token per byte for byte-level
// models (vocabulary 256, token id = byte value).
func vocabulary(vocab int) ([]KV, error) {
	world := tokenizer.World()
	tokens := make([]string, vocab)
	typ := make([]int32, vocab)
	switch {
	case vocab == 256:
		for i := range tokens {
			tokens[i], typ[i] = escape([]byte{byte(i)}), tokenNormal
		}
		return []KV{kv("tokenizer.ggml.model", str("rwkv")), kv("tokenizer.ggml.tokens", strs(tokens)),
			kv("tokenizer.ggml.token_type", ints(typ))}, nil
	case vocab >= world.VocabSize():
		tokens[0], typ[0] = "<s>", tokenControl
		for i := 1; i < vocab; i++ {
			if t, ok := world.Token(i); ok {
				tokens[i], typ[i] = escape(t), tokenNormal
			} else {
				tokens[i], typ[i] = fmt.Sprintf("[PAD%d]", i), tokenUnused
			}
		}
		return []KV{kv("tokenizer.ggml.model", str("rwkv")), kv("tokenizer.ggml.tokens", strs(tokens)),
			kv("tokenizer.ggml.token_type", ints(typ)), kv("tokenizer.ggml.eot_token_id", u32(worldEOT)),
			kv("tokenizer.chat_template", str("rwkv-world"))}, nil
	}
	return nil, fmt.Errorf("a vocabulary of %d tokens is neither byte-level (256) nor the World vocabulary (%d)", vocab, world.VocabSize())
}

// escape writes a token's bytes as the converter does, the body of
// Python's repr() of a bytes object: \t \n \r, \\, \xhh for bytes outside
// printable ASCII, and the quote character escaped when repr would quote
// with it (single quotes unless the token has ' and no ").
func escape(t []byte) string {
	quote := byte('\'')
	if bytes.IndexByte(t, '\'') >= 0 && bytes.IndexByte(t, '"') < 0 {
		quote = '"'
	}
	var b []byte
	for _, c := range t {
		switch {
		case c == quote || c == '\\':
			b = append(b, '\\', c)
		case c == '\t':
			b = append(b, `\t`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c < ' ' || c >= 0x7f:
			b = fmt.Appendf(b, `\x%02x`, c)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// Unescape turns a token of an "rwkv" tokenizer.ggml.tokens back into its
// bytes, as llama.cpp does (llama_unescape_rwkv_token): \t \n \r and \xhh
// are decoded, and a backslash before any other character stands for it.
func Unescape(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			out = append(out, c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 'x':
			var v byte
			for k := 0; k < 2 && i+1 < len(s); k++ {
				i++
				h := s[i]
				if h >= 'a' {
					v = v<<4 + h - 'a' + 10
				} else {
					v = v<<4 + h - '0'
				}
			}
			out = append(out, v)
		default:
			out = append(out, s[i])
		}
	}
	return out
}
