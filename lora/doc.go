// Package lora reads LoRA adapters for RWKV models and merges them into a
// base model, the way web-rwkv applies them when it loads a model
// (docs/web-rwkv-layout.md §3).
//
// An adapter file holds low-rank pairs and full tensors. A pair is named
// either as RWKV-LM's LoRA training writes it, "<module>.lora_A" [r, in] and
// "<module>.lora_B" [out, r], or as web-rwkv's converter writes it,
// "<module>.lora.0" [in, r] and "<module>.lora.1" [out, r]; both describe the
// same update of the module's weight W [out, in]:
//
//	W ← W + (alpha/r)·(B·Aᵀ)    with A = lora.0 [in, r], B = lora.1 [out, r]
//
// A full tensor, named exactly like a tensor of the model, is a delta:
// matrices get W ← W + alpha·L, every other parameter (time-mix, decay,
// layer-norm vectors) is interpolated, v ← alpha·L + (1 − alpha)·v, as
// web-rwkv does; with alpha 1 that replaces v.
//
// Names on both sides are compared after web-rwkv's renaming
// ([format.WebRWKVName]), so an RWKV-LM (.pth) base and a web-rwkv (.st)
// base take the same adapter, in either naming; where the two layouts store
// a tensor transposed, the update is transposed to the base's orientation.
//
// Alphas are chosen by the user, not read from the file: each [Blend] has an
// alpha and optional patterns (regular expressions on the base tensor's
// web-rwkv name, e.g. `blocks\.[0-9]+\.att\.`) whose last match wins. For an
// adapter trained with RWKV-LM's LoRA code, alpha = its lora_alpha gives the
// update that training used.
//
// [Merge] checks every adapter against the base at once, then returns a lazy
// source: a merged tensor is computed in float32 when it is opened and
// rounded once to the base tensor's dtype; other tensors are the base's own.
// The low-rank products run on the GPU when [Options] name one ([NewGPU]).
//
// emb.weight is never merged: an adapter that has a tensor for it is
// refused ([ErrEmbedding]), because web-rwkv ignores such a tensor and
// RWKV-LM's LoRA files store it as a replacement, not a delta, so no single
// reading of it is right.
package lora
