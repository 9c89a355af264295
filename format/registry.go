package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ErrUnknownFormat is wrapped by Open's error for a file no registered
// reader recognises; the message says what the file looks like.
var ErrUnknownFormat = errors.New("unknown file format")

// SniffLen is how many leading bytes Open reads to recognise a format.
const SniffLen = 512

type registered struct {
	name  string
	match func(head []byte) bool
	open  func(r io.ReaderAt, size int64) (*Source, error)
	exts  []string
}

var (
	formatsMu sync.Mutex
	formats   []registered
)

// Register makes a file format known to Open. match reports whether the
// first bytes of a file (up to SniffLen) are in this format; open reads the
// file's directory and returns tensors that read lazily from r. exts are
// the file name extensions of the format (".st"), the first the one its
// writers suggest: reading never looks at them, but [CheckExtension] keeps
// a writer from giving a file another format's name.
func Register(name string, match func(head []byte) bool, open func(r io.ReaderAt, size int64) (*Source, error), exts ...string) {
	formatsMu.Lock()
	defer formatsMu.Unlock()
	formats = append(formats, registered{name, match, open, exts})
}

// CheckExtension refuses an output path whose extension (compared without
// regard to case) is registered to a format other than the one named
// written; written "" stands for data in no model format at all, such as
// raw logits. The error says which extension fits. An extension no format
// registered is always accepted.
func CheckExtension(path, written string) error {
	ext := filepath.Ext(path)
	if ext == "" {
		return nil
	}
	formatsMu.Lock()
	fs := formats
	formatsMu.Unlock()
	owner, fit := "", ".bin"
	for _, f := range fs {
		if f.name == written && len(f.exts) > 0 {
			fit = f.exts[0]
		}
		for _, e := range f.exts {
			if strings.EqualFold(e, ext) && owner == "" {
				owner = f.name
			}
		}
	}
	if owner == "" || owner == written {
		return nil
	}
	what := "data in no model format"
	if written != "" {
		what = written + " data"
	}
	return fmt.Errorf("%s: %s is the extension of %s files, but this writes %s: name it %s",
		path, ext, owner, what, strings.TrimSuffix(path, ext)+fit)
}

// Open opens the model file at path with the reader its first bytes call
// for. Errors name the file. The returned Source keeps the file open until
// its Close is called.
func Open(path string) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	src, err := OpenReaderAt(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	src.Closer = f
	return src, nil
}

// ReadPath opens the file at path and hands it and its size to read, which
// reads what it needs at any offset (a header, say: serialize.ReadHeader,
// gguf.ReadFile), then closes it. read's errors are given after "path: ".
func ReadPath[T any](path string, read func(r io.ReaderAt, size int64) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return zero, err
	}
	v, err := read(f, fi.Size())
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// OpenReaderAt is Open for data that is already at hand; name is used in
// errors, those of reading a tensor included (a *TensorError with File
// name). The caller closes whatever is behind r.
func OpenReaderAt(r io.ReaderAt, name string) (*Source, error) {
	size, err := sizeOf(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	head := make([]byte, min(size, SniffLen))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	formatsMu.Lock()
	fs := formats
	formatsMu.Unlock()
	for _, f := range fs {
		if f.match(head) {
			src, err := f.open(r, size)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			src.Format = f.name
			for _, t := range src.Tensors {
				t.inFile(name)
			}
			return src, nil
		}
	}
	return nil, fmt.Errorf("%s: %w: %s", name, ErrUnknownFormat, Describe(head))
}

func sizeOf(r io.ReaderAt) (int64, error) {
	switch v := r.(type) {
	case interface{ Stat() (os.FileInfo, error) }:
		fi, err := v.Stat()
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	case interface{ Size() int64 }:
		return v.Size(), nil
	}
	return 0, errors.New("cannot tell the size of the input")
}

// Describe says in words what a file starting with head looks like, for
// errors about files that are not what they were expected to be.
func Describe(head []byte) string {
	trimmed := bytes.TrimLeft(head, " \t\r\n\ufeff")
	switch {
	case len(head) == 0:
		return "the file is empty"
	case bytes.HasPrefix(head, []byte("version https://git-lfs")):
		return "it is a Git LFS pointer, not the model itself (fetch the real file with git lfs pull)"
	case bytes.HasPrefix(trimmed, []byte("<")):
		return "it is an HTML or XML page (a download that returned a web page?)"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return "it is a zip archive (a PyTorch .pth checkpoint?)"
	case len(head) >= 2 && head[0] == 0x80 && head[1] <= 5:
		return "it is a Python pickle (a legacy PyTorch checkpoint?)"
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return "it is a tar archive"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "it is gzip-compressed"
	case bytes.HasPrefix(trimmed, []byte("{")):
		return "it is a JSON or text file"
	case bytes.HasPrefix(head, []byte("GGUF")):
		return "it is a GGUF file"
	}
	return fmt.Sprintf("unrecognised first bytes % x", head[:min(len(head), 16)])
}
