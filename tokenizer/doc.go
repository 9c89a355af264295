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
// Tokens are byte strings, not characters: a multi-byte UTF-8 character may
// be split over several tokens. [StreamDecoder] writes generated tokens to an
// io.Writer without ever splitting a character between writes.
package tokenizer
