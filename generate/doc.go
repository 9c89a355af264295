// Package generate turns a model's logits into tokens and text: a
// [Sampler] picks each next token (greedily, or by temperature and nucleus
// sampling, reproducibly for a seed).
package generate
