package serialize

import (
	"errors"
	"fmt"
	"math"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/quantize"
)

// Magic is the value of the header's "format" key.
const Magic = "rwkvkit"

// The version this package writes. A reader accepts any minor version of
// the major versions it knows: a minor version only adds fields, which
// older readers skip. A newer major version is refused with a *VersionError.
const (
	FormatVersion = 1
	FormatMinor   = 1
)

// minorState is the minor version that added state artifacts; a file
// records the lowest minor version whose keys it uses, so model artifacts
// still say 1.0.
const minorState = 1

// Limits a reader enforces before trusting a field of the file, so that a
// corrupt or hostile file cannot make it allocate without bound. Writers
// refuse sources beyond them.
const (
	MaxHeaderSize = 64 << 20 // bytes of the header object, and of the index object
	MaxTensors    = 1 << 20
	MaxNameLen    = 4096    // bytes of a tensor name, metadata key or file name
	MaxStringLen  = 1 << 20 // bytes of any other string (metadata values, notes)
	MaxEntries    = 1 << 16 // entries of a metadata or provenance map or list
	maxDepth      = 32      // nesting of maps and arrays in skipped fields
)

// Payload chunking. Every payload is one or more msgpack bin 32 objects of
// at most the header's chunk_size bytes each (bin 32 can hold 4 GiB − 1).
const (
	DefaultChunkSize = 1 << 30
	MaxChunkSize     = 1<<32 - 1
	binHeaderLen     = 5 // 0xc6 and a big-endian uint32 length
	endLen           = 9 // 0xcf and a big-endian uint64: the index offset
)

// Errors a caller can tell apart with errors.Is.
var (
	// ErrNotArtifact: the file is not an .rkv artifact at all.
	ErrNotArtifact = errors.New("not an rwkvkit artifact")
	// ErrUnsupportedVersion: the file was written by a newer major version.
	ErrUnsupportedVersion = errors.New("unsupported artifact version")
	// ErrTruncated: the file ends before the data its header describes,
	// or lacks the index and end marker that a finished write leaves.
	ErrTruncated = errors.New("artifact is truncated")
	// ErrCorrupt: the file's structure contradicts itself.
	ErrCorrupt = errors.New("artifact is corrupt")
	// ErrChecksum: stored bytes do not match their recorded xxhash64.
	ErrChecksum = errors.New("checksum mismatch")
)

// A VersionError reports an artifact of a major version this package
// cannot read. errors.Is(err, ErrUnsupportedVersion) holds for it.
type VersionError struct {
	Major, Minor int64
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("rkv: artifact format version %d.%d is newer than this reader (%d.%d): use a newer rwkvkit",
		e.Major, e.Minor, FormatVersion, FormatMinor)
}

// Is makes errors.Is(err, ErrUnsupportedVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrUnsupportedVersion }

// A Header is everything an artifact says about itself: its version, the
// model, where it came from, and its tensor table with checksums.
type Header struct {
	Major, Minor int64
	ChunkSize    int64
	// Model is nil when the writer recorded no model description.
	Model *format.ModelInfo
	// State is set for a state artifact (format 1.1), which holds a
	// recurrent state rather than a model.
	State      *StateInfo
	Provenance Provenance
	Metadata   map[string]string
	Tensors    []TensorInfo
	// HeaderLen is the byte length of the header object (the file's first
	// object); IndexOffset is where the index object starts.
	HeaderLen, IndexOffset int64
}

// A StateInfo describes the recurrent state a state artifact holds: the
// shape of the models it belongs to, and the layout of its time_state
// tensors (docs/ARTIFACT.md §11).
type StateInfo struct {
	Version                        format.Version
	Layout                         format.Layout
	Layers, Embed, Heads, HeadSize int
}

func (s *StateInfo) validate() error {
	if s.Version == "" || len(s.Version) > 64 || s.Layers <= 0 || s.Embed <= 0 || s.Heads < 0 || s.HeadSize < 0 ||
		s.Layers > math.MaxInt32 || s.Embed > math.MaxInt32 || s.Heads > math.MaxInt32 || s.HeadSize > math.MaxInt32 {
		return fmt.Errorf("state of RWKV %q, %d layers, embedding %d, %d heads of %d is not a valid shape",
			s.Version, s.Layers, s.Embed, s.Heads, s.HeadSize)
	}
	return nil
}

// TensorInfo is one entry of the tensor table.
type TensorInfo struct {
	Name  string
	DType format.DType
	Shape []int64
	// Offset is where the tensor's first bin object starts in the file;
	// Length is the payload's byte length (without the bin headers).
	Offset, Length int64
	// BlockSize is the quantization block of Int8Block, NF4Block and
	// SF4Block tensors; Table is the 16 code values of an NF4Block or
	// SF4Block tensor.
	BlockSize int
	Table     []float32
	XXHash64  uint64
}

// Chunks is the number of bin objects holding the tensor's payload.
func (t *TensorInfo) Chunks(chunkSize int64) int64 { return numChunks(t.Length, chunkSize) }

// numChunks is how many bin objects hold a payload of n bytes: at least
// one, so that an empty tensor still appears in the file.
func numChunks(n, chunkSize int64) int64 {
	if n == 0 {
		return 1
	}
	return (n + chunkSize - 1) / chunkSize
}

// encodedLen is the number of file bytes a payload of n bytes occupies.
// n is at most the file size, so the sum does not overflow.
func encodedLen(n, chunkSize int64) int64 {
	return n + binHeaderLen*numChunks(n, chunkSize)
}

// nf4Table is the NF4 code table an NF4Block payload means: the one the
// quantizer encodes with.
var nf4Table = quantize.NF4Table

// NF4Table returns a copy of the NF4 code table written with NF4Block tensors.
func NF4Table() []float32 { return append([]float32(nil), nf4Table[:]...) }

// codeTable is the code table a 4-bit payload of dt means (NF4's, or SF4's
// Student-t one), or nil for other kinds. Files carry it, and readers
// refuse a table that differs, so that a payload never decodes to values
// other than those it was encoded for.
func codeTable(dt format.DType) *[16]float32 {
	switch dt {
	case format.NF4Block:
		return &nf4Table
	case format.SF4Block:
		return &quantize.SF4Table
	}
	return nil
}

// blockSize is the quantization block of dt, or 0 for unquantized kinds.
func blockSize(dt format.DType) int {
	switch dt {
	case format.Int8Block:
		return format.Int8BlockSize
	case format.NF4Block, format.SF4Block:
		return format.NF4BlockSize
	}
	return 0
}
