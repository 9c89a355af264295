package pth

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strings"

	"github.com/rwkvkit/rwkvkit/format"
)

func init() {
	format.Register("pth", match, Open, ".pth", ".pt")
}

// Errors a caller may want to tell apart. Open wraps them with context.
var (
	// ErrNotCheckpoint: the input is neither a zip nor a legacy checkpoint.
	ErrNotCheckpoint = errors.New("not a PyTorch checkpoint")
	// ErrTorchScript: a torch.jit archive, whose weights belong to code.
	ErrTorchScript = errors.New("TorchScript archive (constants.pkl, code/), not a checkpoint: load it in Python and torch.save its state_dict()")
	// ErrLegacyTar: the tar layout of the earliest PyTorch versions.
	ErrLegacyTar = errors.New("legacy tar checkpoint of early PyTorch versions is not supported: load it in an old PyTorch and torch.save it again")
	// ErrNoPickle: a zip archive without the data.pkl that describes a checkpoint.
	ErrNoPickle = errors.New("zip archive has no data.pkl: not a PyTorch checkpoint")
	// ErrCompressed: a zip record that is not stored as is; torch.save
	// never compresses, and tensors are read straight from the file.
	ErrCompressed = errors.New("compressed zip record (torch.save stores records uncompressed)")
)

var (
	zipMagic = []byte("PK\x03\x04")
	// legacyMagic is protocol 2's pickle of the int 0x1950a86a20f9469cfc6c:
	// PROTO 2, LONG1 of 10 bytes, the bytes little-endian.
	legacyMagic = []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19")
)

// match reports whether head starts a checkpoint: a zip archive, the legacy
// magic pickle, or a tar archive laid out as early PyTorch wrote it (so
// that it gets this package's explanation instead of "unknown format").
func match(head []byte) bool {
	return bytes.HasPrefix(head, zipMagic) || bytes.HasPrefix(head, legacyMagic) || isTorchTar(head)
}

// isTorchTar: a ustar header whose first member is one of the four files
// of torch's tar checkpoints.
func isTorchTar(head []byte) bool {
	if len(head) < 262 || string(head[257:262]) != "ustar" {
		return false
	}
	name, _, _ := bytes.Cut(head[:100], []byte{0})
	switch string(name) {
	case "sys_info", "pickle", "storages", "tensors":
		return true
	}
	return false
}

// Open reads the directory and pickle of the checkpoint in the size bytes of
// r. The returned tensors read from r when opened, so r must stay open while
// they are used; the Source's Closer is nil.
func Open(r io.ReaderAt, size int64) (*format.Source, error) {
	src, err := open(r, size)
	if err != nil {
		return nil, fmt.Errorf("pth: %w", err)
	}
	src.Format = "pth"
	return src, nil
}

func open(r io.ReaderAt, size int64) (*format.Source, error) {
	if size < 0 {
		return nil, fmt.Errorf("negative size %d", size)
	}
	head := make([]byte, min(size, format.SniffLen))
	if n, err := r.ReadAt(head, 0); n < len(head) {
		return nil, fmt.Errorf("reading the first bytes: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, zipMagic):
		return openZip(r, size)
	case bytes.HasPrefix(head, legacyMagic):
		return openLegacy(r, size)
	case isTorchTar(head):
		return nil, ErrLegacyTar
	}
	return nil, fmt.Errorf("%w: %s", ErrNotCheckpoint, format.Describe(head))
}

// zipCheckpoint is the directory of a zip checkpoint.
type zipCheckpoint struct {
	r       io.ReaderAt
	size    int64
	records map[string]*zip.File // by name below the top-level folder
}

func openZip(r io.ReaderAt, size int64) (*format.Source, error) {
	z, err := openZipDir(r, size)
	if err != nil {
		return nil, err
	}
	obj, bigEndian, _, err := z.load()
	if err != nil {
		return nil, err
	}
	return source(obj, r, bigEndian)
}

// openZipDir reads the zip directory and checks the archive is a checkpoint.
func openZipDir(r io.ReaderAt, size int64) (*zipCheckpoint, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are only looked up, never used as paths
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, zip.ErrFormat) {
			return nil, fmt.Errorf("reading the zip directory (%w?): %v", ErrTruncated, err)
		}
		return nil, fmt.Errorf("reading the zip directory: %w", err)
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("zip archive is empty: %w", ErrNoPickle)
	}
	// torch names the folder after the file, or "archive"; like torch, take
	// the folder of the first record.
	top, _, ok := strings.Cut(zr.File[0].Name, "/")
	if !ok {
		return nil, fmt.Errorf("first zip record %s is not in a folder: %w", quote(zr.File[0].Name), ErrNotCheckpoint)
	}
	z := &zipCheckpoint{r: r, size: size, records: make(map[string]*zip.File, len(zr.File))}
	for _, f := range zr.File {
		rest, ok := strings.CutPrefix(f.Name, top+"/")
		if !ok {
			continue
		}
		if _, dup := z.records[rest]; dup {
			return nil, fmt.Errorf("zip record %s appears twice", quote(f.Name))
		}
		z.records[rest] = f
	}
	if _, ok := z.records["constants.pkl"]; ok {
		return nil, ErrTorchScript
	}
	for name := range z.records {
		if strings.HasPrefix(name, "code/") {
			return nil, ErrTorchScript
		}
	}
	if _, ok := z.records["data.pkl"]; !ok {
		return nil, ErrNoPickle
	}
	return z, nil
}

// load unpickles data.pkl into tensor descriptors.
func (z *zipCheckpoint) load() (obj any, bigEndian bool, l *loader, err error) {
	bigEndian, err = z.byteOrder()
	if err != nil {
		return nil, false, nil, err
	}
	pf := z.records["data.pkl"]
	off, n, err := z.record(pf)
	if err != nil {
		return nil, false, nil, err
	}
	pkl, err := scanPickle(bufio.NewReaderSize(io.NewSectionReader(z.r, off, n), 64<<10), n, true)
	if err != nil {
		return nil, false, nil, fmt.Errorf("data.pkl: %w", err)
	}
	// torch reads the pickle up to its STOP and ignores what follows; the
	// record's CRC-32 covers that too.
	crc := crc32.NewIEEE()
	crc.Write(pkl)
	if _, err := io.Copy(crc, io.NewSectionReader(z.r, off+int64(len(pkl)), n-int64(len(pkl)))); err != nil {
		return nil, false, nil, fmt.Errorf("data.pkl: %w", err)
	}
	if crc.Sum32() != pf.CRC32 {
		return nil, false, nil, fmt.Errorf("data.pkl: CRC-32 mismatch (corrupt file)")
	}
	l = &loader{budget: budget(z.size), storages: map[string]*storage{}, resolve: z.storage}
	obj, err = l.unpickle(pkl)
	if err != nil {
		return nil, false, nil, fmt.Errorf("data.pkl: %w", err)
	}
	return obj, bigEndian, l, nil
}

// record returns where a stored record's bytes lie in the file.
func (z *zipCheckpoint) record(f *zip.File) (off, n int64, err error) {
	if f.Method != zip.Store {
		return 0, 0, fmt.Errorf("record %s (method %d): %w", quote(f.Name), f.Method, ErrCompressed)
	}
	if f.CompressedSize64 != f.UncompressedSize64 || f.UncompressedSize64 > math.MaxInt64 {
		return 0, 0, fmt.Errorf("record %s: stored size %d differs from its size %d", quote(f.Name), f.CompressedSize64, f.UncompressedSize64)
	}
	off, err = f.DataOffset()
	if err != nil {
		return 0, 0, fmt.Errorf("record %s: %w", quote(f.Name), err)
	}
	n = int64(f.UncompressedSize64)
	if off < 0 || off > z.size || n > z.size-off {
		return 0, 0, fmt.Errorf("record %s of %d bytes at %d runs past the end of the %d-byte file: %w", quote(f.Name), n, off, z.size, ErrTruncated)
	}
	return off, n, nil
}

// byteOrder reads the byteorder record torch ≥ 2.0 writes; without one the
// storages are little-endian.
func (z *zipCheckpoint) byteOrder() (bigEndian bool, err error) {
	f, ok := z.records["byteorder"]
	if !ok {
		return false, nil
	}
	off, n, err := z.record(f)
	if err != nil {
		return false, err
	}
	if n > 16 {
		return false, fmt.Errorf("byteorder record of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := z.r.ReadAt(b, off); err != nil && err != io.EOF {
		return false, fmt.Errorf("byteorder record: %w", err)
	}
	switch s := strings.TrimSpace(string(b)); s {
	case "little":
		return false, nil
	case "big":
		return true, nil
	default:
		return false, fmt.Errorf("byteorder record says %q", s)
	}
}

// storage finds storage key's record, which must hold its nbytes.
func (z *zipCheckpoint) storage(key string, nbytes int64) (*storage, error) {
	f, ok := z.records["data/"+key]
	if !ok {
		return nil, fmt.Errorf("storage %s has no record in data/", quote(key))
	}
	off, n, err := z.record(f)
	if err != nil {
		return nil, err
	}
	if nbytes > n {
		return nil, fmt.Errorf("storage %s declares %d bytes but its record has %d", quote(key), nbytes, n)
	}
	return &storage{off: off}, nil
}
