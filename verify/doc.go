// Package verify measures how closely a model's logits follow a
// reference's on the same tokens, the way llama.cpp's perplexity tool
// judges a quantization: perplexity, KL divergence, top-1 agreement and the
// size of the logit differences ([Compare]).
package verify
