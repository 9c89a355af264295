package gguf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the alignment of the data section and of every
// tensor's data when the file sets no general.alignment.
const DefaultAlignment = 32

// Errors the reader wraps, with context, in every error about a file's
// contents, so that callers can tell the cases apart.
var (
	ErrNotGGUF     = errors.New("not a GGUF file")
	ErrVersion     = errors.New("unsupported GGUF version")
	ErrTruncated   = errors.New("GGUF file is truncated")
	ErrMalformed   = errors.New("malformed GGUF file")
	ErrUnsupported = errors.New("unsupported tensor type")
	ErrNotRWKV     = errors.New("not an RWKV-6 or RWKV-7 GGUF")
)

// A Type is a ggml tensor type (enum ggml_type in ggml.h).
type Type uint32

// The ggml types. Only those with a block layout in types are read.
const (
	TypeF32  Type = 0
	TypeF16  Type = 1
	TypeQ4_0 Type = 2
	TypeQ4_1 Type = 3
	TypeQ5_0 Type = 6
	TypeQ5_1 Type = 7
	TypeQ8_0 Type = 8
	TypeQ8_1 Type = 9
	TypeQ2_K Type = 10
	TypeQ3_K Type = 11
	TypeQ4_K Type = 12
	TypeQ5_K Type = 13
	TypeQ6_K Type = 14
	TypeQ8_K Type = 15
	TypeI8   Type = 24
	TypeI16  Type = 25
	TypeI32  Type = 26
	TypeI64  Type = 27
	TypeF64  Type = 28
	TypeBF16 Type = 30
)

// typeInfo is a type's block: blockLen elements stored in blockBytes bytes.
type typeInfo struct {
	name                 string
	blockLen, blockBytes int
	// decode dequantizes whole blocks into float32 (nil: not decoded here).
	decode func(dst []float32, src []byte)
}

// qk is QK_K, the element count of a K-quant super-block.
const qk = 256

// types lists every ggml type by number (ggml.c's type_traits); decode is
// set for the ones rwkvkit reads.
var types = map[Type]typeInfo{
	TypeF32:  {"F32", 1, 4, nil},
	TypeF16:  {"F16", 1, 2, nil},
	TypeQ4_0: {"Q4_0", 32, 18, decodeQ4_0},
	TypeQ4_1: {"Q4_1", 32, 20, decodeQ4_1},
	TypeQ5_0: {"Q5_0", 32, 22, decodeQ5_0},
	TypeQ5_1: {"Q5_1", 32, 24, decodeQ5_1},
	TypeQ8_0: {"Q8_0", 32, 34, decodeQ8_0},
	TypeQ8_1: {"Q8_1", 32, 36, nil},
	TypeQ2_K: {"Q2_K", qk, 84, decodeQ2_K},
	TypeQ3_K: {"Q3_K", qk, 110, decodeQ3_K},
	TypeQ4_K: {"Q4_K", qk, 144, decodeQ4_K},
	TypeQ5_K: {"Q5_K", qk, 176, decodeQ5_K},
	TypeQ6_K: {"Q6_K", qk, 210, decodeQ6_K},
	TypeQ8_K: {"Q8_K", qk, 292, nil},
	16:       {"IQ2_XXS", qk, 66, nil},
	17:       {"IQ2_XS", qk, 74, nil},
	18:       {"IQ3_XXS", qk, 98, nil},
	19:       {"IQ1_S", qk, 50, nil},
	20:       {"IQ4_NL", 32, 18, nil},
	21:       {"IQ3_S", qk, 110, nil},
	22:       {"IQ2_S", qk, 82, nil},
	23:       {"IQ4_XS", qk, 136, nil},
	TypeI8:   {"I8", 1, 1, nil},
	TypeI16:  {"I16", 1, 2, nil},
	TypeI32:  {"I32", 1, 4, nil},
	TypeI64:  {"I64", 1, 8, nil},
	TypeF64:  {"F64", 1, 8, nil},
	29:       {"IQ1_M", qk, 56, nil},
	TypeBF16: {"BF16", 1, 2, nil},
	34:       {"TQ1_0", qk, 54, nil},
	35:       {"TQ2_0", qk, 66, nil},
	39:       {"MXFP4", 32, 17, nil},
}

func (t Type) String() string {
	if ti, ok := types[t]; ok {
		return ti.name
	}
	return "type" + strconv.FormatUint(uint64(t), 10)
}

// ParseType returns the type named s ("F16", "q8_0", …).
func ParseType(s string) (Type, error) {
	for t, ti := range types {
		if strings.EqualFold(ti.name, s) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("gguf: unknown tensor type %q", s)
}

// BlockLen is the number of elements of one block of t (1 for plain types).
func (t Type) BlockLen() int { return types[t].blockLen }

// RowBytes is the storage size of n elements of t (n a multiple of the
// block length), or an error.
func (t Type) RowBytes(n int64) (int64, error) {
	ti, ok := types[t]
	if !ok {
		return 0, fmt.Errorf("%w %v", ErrUnsupported, t)
	}
	if n < 0 || n%int64(ti.blockLen) != 0 {
		return 0, fmt.Errorf("%d elements are not whole %v blocks of %d", n, t, ti.blockLen)
	}
	return mulCheck(n/int64(ti.blockLen), int64(ti.blockBytes))
}

// A ValueType is the type of a metadata value (enum gguf_type).
type ValueType uint32

// The metadata value types.
const (
	Uint8   ValueType = 0
	Int8    ValueType = 1
	Uint16  ValueType = 2
	Int16   ValueType = 3
	Uint32  ValueType = 4
	Int32   ValueType = 5
	Float32 ValueType = 6
	Bool    ValueType = 7
	String  ValueType = 8
	Array   ValueType = 9
	Uint64  ValueType = 10
	Int64   ValueType = 11
	Float64 ValueType = 12
)

var valueTypeNames = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"}

// size of one value of a fixed-size type; strings take at least 8 bytes.
var valueSizes = [...]int{1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return "value type " + strconv.FormatUint(uint64(t), 10)
}

// A Value is one metadata value: a Go uint8, int8, uint16, int16, uint32,
// int32, float32, bool, string, uint64, int64 or float64 for a scalar, and
// a slice of one of those for an array.
type Value struct {
	Type ValueType // of the value; for an array, Array
	Elem ValueType // for an array, the type of its elements
	V    any
}

// Uint returns an unsigned or non-negative signed integer value.
func (v Value) Uint() (uint64, bool) {
	switch x := v.V.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Float returns a floating-point value.
func (v Value) Float() (float64, bool) {
	switch x := v.V.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// Str returns a string value.
func (v Value) Str() (string, bool) {
	s, ok := v.V.(string)
	return s, ok
}

// Len is the number of elements of an array (0 for a scalar).
func (v Value) Len() int {
	switch x := v.V.(type) {
	case []uint8:
		return len(x)
	case []int8:
		return len(x)
	case []uint16:
		return len(x)
	case []int16:
		return len(x)
	case []uint32:
		return len(x)
	case []int32:
		return len(x)
	case []float32:
		return len(x)
	case []bool:
		return len(x)
	case []string:
		return len(x)
	case []uint64:
		return len(x)
	case []int64:
		return len(x)
	case []float64:
		return len(x)
	}
	return 0
}

// String formats a scalar as is and an array by its type and length, so
// that a 65,536-token vocabulary prints as one short line.
func (v Value) String() string {
	if v.Type == Array {
		return fmt.Sprintf("[%d × %v]", v.Len(), v.Elem)
	}
	if s, ok := v.V.(string); ok {
		return s
	}
	return fmt.Sprint(v.V)
}

// A KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// A TensorInfo describes one tensor of the file.
type TensorInfo struct {
	Name string
	// Dims are ggml's ne: Dims[0] is the length of a row, the fastest
	// varying index; numpy and PyTorch list them the other way round.
	Dims   []int64
	Type   Type
	Offset int64 // of its data, from the start of the data section
	Size   int64 // bytes of data
}

// Shape is the tensor's shape in numpy order (rows last).
func (t *TensorInfo) Shape() []int64 {
	s := make([]int64, len(t.Dims))
	for i, d := range t.Dims {
		s[len(t.Dims)-1-i] = d
	}
	return s
}

// A File is a parsed GGUF header.
type File struct {
	Version   uint32
	KV        []KV // in file order
	Tensors   []TensorInfo
	Alignment int64
	// DataOffset is where the data section starts in the file.
	DataOffset int64

	kv map[string]int
}

// Get returns the value of key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.kv[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

// Architecture is general.architecture, or "".
func (f *File) Architecture() string {
	v, _ := f.Get("general.architecture")
	s, _ := v.Str()
	return s
}

func mulCheck(a, b int64) (int64, error) {
	if a < 0 || b < 0 || (b != 0 && a > (1<<63-1)/b) {
		return 0, fmt.Errorf("%w: size overflows", ErrMalformed)
	}
	return a * b, nil
}
