// Package tokenizer turns text into the token ids RWKV models read and back.
//
// Two tokenizers are provided behind the [Tokenizer] interface:
//
//   - [Vocab], the greedy longest-match tokenizer of the RWKV "World" models.
//     [World] returns the rwkv_vocab_v20230424 vocabulary embedded in the
//     binary; [Load] and [LoadFile] read other vocabularies in the same text
//     or JSON form.
//   - [Bytes], for models with a 256-entry vocabulary, where each token is
//     one byte.
//
// A Vocab encodes the bytes of the text, valid UTF-8 or not: at each
// position it takes the longest token that matches there. If two ids have
// the same bytes, the higher id is used, as in the Python reference, which
// fills its bytes-to-id table in id order. Every single byte is a token, so
// any text can be encoded. Id 0, [EndOfText], is never produced by Encode and
// decodes to nothing.
//
// Tokens are byte strings, not characters: a multi-byte UTF-8 character may
// be split over several tokens. [StreamDecoder] writes generated tokens to an
// io.Writer without ever splitting a character between writes.
package tokenizer
