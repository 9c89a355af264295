// Package generate continues text on any inference engine
// ([engine.Engine]): a [Generator] feeds a prompt through a sequence's
// state, then samples one token at a time, feeding each back, and streams
// the text through the tokenizer as soon as each character is complete. A
// [Sampler] picks each next token: greedily, or by temperature and nucleus
// sampling, reproducibly for a seed.
package generate
