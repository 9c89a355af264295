// Package gguf reads and writes GGUF, the file format of llama.cpp and ggml,
// for RWKV-6 and RWKV-7 models.
//
// [ReadFile] parses a GGUF file (version 2 or 3, little-endian) into its
// metadata and tensor descriptors, checking every count, length, offset and
// size against the file before anything is allocated. [Open], which
// importing the package registers with [format.Open], goes one step further
// for the architectures "rwkv6" and "rwkv7": it returns the tensors under the
// names and in the layout of web-rwkv's converted files ("blocks.N.att.key.weight",
// LoRA matrices transposed, mixes of shape [1, 1, C]), so that everything
// else in rwkvkit reads a GGUF like a .st. Tensors are read lazily; float
// tensors (F32, F16, BF16) keep their type, and the block-quantized ones of
// llama.cpp (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q6_K) are dequantized to
// float32 with ggml's own arithmetic (ggml-quants.c) when they are read.
//
// [Write] turns any RWKV-6 or RWKV-7 source (.pth, .st, a float .rkv) into
// the GGUF that llama.cpp's converter, convert_hf_to_gguf.py, makes from the
// same model: the same keys, tensor names, shapes and tensor types, F32, F16
// or Q8_0, with the World vocabulary (or a byte vocabulary) embedded.
package gguf
