// Package runner runs RWKV language models (versions 4, 5.0, 5.1, 5.2, 6
// and 7) on the CPU. It is the reference the rest of rwkvkit is checked
// against, so it computes the official math (docs/rwkv-math.md) in float32,
// and only then tries to be fast.
//
// [Load] takes any [format.Source] (a .pth checkpoint, a web-rwkv .st file,
// an .rkv artifact or a model built in memory), normalises its names with
// [format.WebRWKV] and keeps the large matrices in the precision of the
// file: float32 stays float32; float16 and bfloat16 stay 16-bit and are
// widened inside the products; Int8 and NF4 (web-rwkv's block formats) stay
// blocks, and the products work on them block by block. Vectors are widened
// to float32 at load. Keeping 16-bit weights halves the memory read per
// generated token, which is what bounds its speed: on a 2-core AMD EPYC
// (Zen 5) a float16 RWKV-7 0.1B generates 145–170 tokens/s, the same model
// in float32 80–100, while prompts run at the same speed either way (their
// weight tiles are widened once and reused by every token).
//
// A [Model] is an [engine.Engine], the reference the GPU engine is tested
// against. [Model.Run] feeds a batch of sequences, each with its own tokens,
// its own state and its own output wanted: the rows of all of them (up to
// 512 at a time) go through the same matrix products (matrix-matrix, not
// one matrix-vector product per token, so a batch of 32 generated tokens
// reads the weights once, not 32 times), while each sequence's recurrence
// runs token by token on its own state. [Model.Forward] and [Model.Step]
// are Run for one sequence. Products use every core: GOMAXPROCS workers
// over blocks of rows, with helper goroutines that spin briefly between
// products so that the many short products of token-by-token generation
// can use them.
//
// On amd64 CPUs with AVX2, FMA and F16C the inner loops are assembly (the
// matrix-matrix kernel uses AVX-512 where the CPU has it); elsewhere they
// are portable Go. Both compute the same sums, in different orders, and
// are tested against each other and against the reference logits.
//
// A [State] holds the recurrent memory of one sequence in host memory, in
// the layout of [engine.Snapshot], so that it moves to and from any engine
// (and to a file) as it is.
package runner
