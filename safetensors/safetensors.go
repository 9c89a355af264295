// Package safetensors reads and writes the safetensors tensor format
// (huggingface/safetensors): an 8-byte little-endian header length, a JSON
// header naming each tensor's dtype, shape and byte range, then the data.
//
// The reader validates the whole header against the file before returning
// anything, with the rules of the reference implementation and a few
// stricter ones (duplicate names are rejected explicitly), and reports each
// kind of bad input with its own sentinel error. Tensors are read lazily.
// Importing the package registers the format with [format.Open].
//
// The writer streams one tensor at a time and lays the file out exactly as
// the reference writer does, so converting a model here gives the same bytes
// as the Python tools.
package safetensors

import (
	"errors"

	"github.com/rwkvkit/rwkvkit/format"
)

// MaxHeaderSize is the largest header the reference reader accepts
// (100,000,000 bytes).
const MaxHeaderSize = 100_000_000

// Errors for malformed files. The reader wraps exactly one of them, with
// context, in every error about the file's contents.
var (
	ErrTooShort         = errors.New("file shorter than 8 bytes")
	ErrHeaderTooLarge   = errors.New("header too large")
	ErrHeaderPastEOF    = errors.New("header extends past the end of the file")
	ErrNotUTF8          = errors.New("header is not valid UTF-8")
	ErrNotJSON          = errors.New("header is not valid JSON")
	ErrNotObject        = errors.New("header is not a JSON object")
	ErrMetadata         = errors.New("__metadata__ is not a map of strings to strings")
	ErrDuplicate        = errors.New("duplicate key")
	ErrInvalidTensor    = errors.New("invalid tensor entry")
	ErrUnknownDType     = errors.New("unknown dtype")
	ErrUnsupportedDType = errors.New("dtype not supported")
	ErrOverflow         = errors.New("size overflows")
	ErrSizeMismatch     = errors.New("byte size does not match data_offsets")
	ErrOffsets          = errors.New("data_offsets do not cover the data buffer contiguously from 0")
	ErrTrailingBytes    = errors.New("bytes after the last tensor")
	ErrTruncated        = errors.New("data buffer shorter than the header declares")
)

// dtypes maps safetensors dtype names to the element types rwkvkit has.
// The quantized kinds have rwkvkit names of their own and are not listed.
var dtypes = map[string]format.DType{
	"BOOL": format.Bool, "U8": format.U8, "I8": format.I8,
	"I16": format.I16, "U16": format.U16, "F16": format.F16, "BF16": format.BF16,
	"I32": format.I32, "U32": format.U32, "F32": format.F32,
	"F64": format.F64, "I64": format.I64, "U64": format.U64,
}

// unsupported are dtypes of the safetensors specification that rwkvkit has
// no element type for (8-, 6- and 4-bit floats, complex). They are reported
// as such rather than as unknown.
var unsupported = map[string]bool{
	"F8_E5M2": true, "F8_E4M3": true, "F8_E8M0": true, "F8_E4M3FNUZ": true,
	"F8_E5M2FNUZ": true, "F6_E2M3": true, "F6_E3M2": true, "F4": true, "C64": true,
}

// order is the reference writer's dtype order (the declaration order of
// its Dtype enum, "increasing alignment"); the writer puts higher values
// first. From huggingface/safetensors safetensors/src/tensor.rs.
var order = map[format.DType]int{
	format.Bool: 0, format.U8: 4, format.I8: 5, format.I16: 9, format.U16: 10,
	format.F16: 11, format.BF16: 12, format.I32: 13, format.U32: 14,
	format.F32: 15, format.F64: 17, format.I64: 18, format.U64: 19,
}

func init() {
	format.Register("safetensors", match, Open, ".st", ".safetensors")
}
