// Package serialize reads and writes the .rkv artifact: a quantized and/or
// LoRA-merged RWKV model saved so that loading it needs no conversion and no
// quantization.
//
// An artifact is a sequence of msgpack objects, so any msgpack library can
// walk it: a header map (format name and version, model description,
// provenance, and a tensor table with every tensor's name, storage kind,
// shape, byte length and file offset), then each tensor's raw bytes as one
// or more bin objects, then an index map with the xxhash64 of the header and
// of every payload, then a fixed-width uint64 giving the index's offset.
// docs/ARTIFACT.md is the exact schema.
//
// Writing streams one tensor at a time through a fixed buffer; reading
// locates any tensor from the header without decoding other payloads, and a
// tensor's reader checks its length and checksum before it hands over the
// last bytes. Importing the package registers the format with
// [format.Open] under the name "rkv".
package serialize
