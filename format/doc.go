// Package format is the vocabulary every rwkvkit package speaks: element types
// ([DType]) with exact conversions, lazily read tensors ([Tensor]), ordered
// named tensor sets ([Source]), the RWKV model description detected from
// tensor names and shapes ([ModelInfo]), the web-rwkv layout transform, and
// the registry that lets [Open] hand a file to the reader of its format.
//
// Readers register themselves the way image/png registers with image:
// importing a reader package for its side effect makes [Open] recognise its
// files by their first bytes, whatever their extension. A format also
// registers its file name extensions, which only writers look at
// ([CheckExtension]: no .rkv written under a .st name).
//
// Readers of untrusted files share two helpers to stay bounded whatever a
// file claims: [Quote] names a value from the file in an error in a few
// hundred bytes at most, and a [Budget] caps what a reader allocates at a
// few bytes per byte of the file (docs/SECURITY.md).
package format
