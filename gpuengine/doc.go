// Package gpuengine runs RWKV language models on a GPU through WebGPU
// (package gpu, Vulkan): an [engine.Engine] that computes what the CPU engine
// (package runner) computes, from the same files, much faster.
//
// # Weights
//
// Weights stay on the GPU for the life of the engine, in arenas (storage
// buffers no larger than one binding): matrices as float16 packed two per
// u32 (a file's float32 or bfloat16 matrices are rounded to float16 once, to
// nearest even, as web-rwkv loads them), Int8 and NF4 matrices as the blocks
// of web-rwkv's layout — the bytes of an .rkv payload — multiplied straight
// from the blocks; vectors as float32. [Options.Plan] quantizes a float model
// on the GPU while it loads, giving the same blocks as `rwkvkit quantize`.
//
// # Steps
//
// [Engine.Run] takes a batch of sequences of any lengths. Their tokens are
// fed in passes of at most [Options.Chunk] tokens: each pass takes the next
// tokens of every sequence that has some left (a segment per sequence), and
// runs all layers over them, recorded as one compute pass and submitted
// once, with bind groups and parameters made at load. The matrix products
// of a pass multiply all its tokens together — matrix-vector kernels for a
// few tokens, tiled matrix-matrix kernels through workgroup memory for
// more, a narrow product's columns split among workgroups whose partial sums
// a second dispatch adds — while each recurrence runs token by token inside
// its kernel, one workgroup per segment and head, the state in registers.
// Logits come back only for the positions asked for: the final LayerNorm
// and the head run over them in chunks of at most [Options.LogitRows], each
// chunk's logits copied out on the host while the GPU computes the next. The
// head writes them into host memory itself where the device can bind a
// download buffer as storage (wgpu-native's mappable primary buffers), with
// no copy on the queue.
//
// # States
//
// States live on the GPU, one slot of a per-layer buffer per state, laid out
// as [engine.Snapshot] is except that RWKV-7 keeps each head's matrix by
// columns (the threads of a head, a row each, then touch adjacent floats);
// [State.Snapshot] and [State.Restore] are copies that turn the matrices,
// and a session can move between this engine and the CPU engine.
//
// # Versions
//
// Each RWKV version has its own file of tensors and recording (v7.go, …)
// and of kernels (wgsl/timemix7.wgsl, …); the LayerNorm, token-shift and
// matrix kernels are shared.
package gpuengine
