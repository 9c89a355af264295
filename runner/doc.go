// Package runner runs RWKV language models (versions 4, 5.0, 5.1, 5.2, 6
// and 7) on the CPU. It is the reference the rest of rwkvkit is checked
// against, so it computes the official math (docs/rwkv-math.md) in float32,
// and only then tries to be fast.
//
// [Load] takes any [format.Source] (a .pth checkpoint, a web-rwkv .st file, an
// .rkv artifact or a model built in memory), normalises its names with
// [format.WebRWKV] and keeps the large matrices in the precision of the file:
// float32 stays float32; float16 and bfloat16 stay 16-bit and are widened
// inside the products, which halves the memory traffic of token-by-token
// generation (the dominant cost there) at the price of a conversion per
// element; Int8 and NF4 blocks are dequantized block by block as the
// products read them. Vectors are widened to float32 at load.
//
// [Model.Step] feeds one token; [Model.Forward] feeds a sequence, computing
// the matrix products of all its tokens together (matrix-matrix, not one
// matrix-vector product per token) while the recurrence runs token by token.
// Products use every core (GOMAXPROCS workers over blocks of rows). On amd64
// CPUs with AVX2, FMA and F16C the inner loops are assembly; elsewhere they
// are portable Go with the same results up to float32 rounding.
//
// A [State] holds the recurrent memory of one sequence; it can be cloned and
// saved. A [Sampler] turns logits into tokens reproducibly for a seed.
package runner
