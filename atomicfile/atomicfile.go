// Package atomicfile writes a file so that readers only ever see the old
// file or the complete new one: the data goes to a temporary file in the
// same folder, which is synced and renamed over the destination at the end.
// An existing file is replaced only when asked to, and a write that fails or
// is cancelled removes its temporary file, so an interrupted run leaves the
// old file (or nothing) and never half a file.
package atomicfile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExists is wrapped by the error for a destination that already exists
// when force is false. errors.Is(err, fs.ErrExist) holds as well.
var ErrExists = fmt.Errorf("already exists (not replaced without force): %w", fs.ErrExist)

// A File is a pending write of a destination path. Its data goes to a
// temporary file until Commit; Discard (or a failed Commit) removes it.
type File struct {
	path  string
	force bool
	f     *os.File
	done  bool
}

// Create starts writing path. Unless force is set it fails with [ErrExists]
// when path already exists, before anything is written. The temporary file
// is created in path's folder (so the final rename stays on one file
// system) with a hidden name ending in ".tmp", and the usual permissions
// for a new file (0666 less the umask).
func Create(path string, force bool) (*File, error) {
	if !force {
		if err := checkAbsent(path); err != nil {
			return nil, err
		}
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	var lastErr error
	for range 10 {
		var r [6]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, err
		}
		tmp := filepath.Join(dir, "."+base+"."+hex.EncodeToString(r[:])+".tmp")
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			return &File{path: path, force: force, f: f}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func checkAbsent(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return &fs.PathError{Op: "create", Path: path, Err: ErrExists}
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return err
	}
}

// Name is the destination path.
func (f *File) Name() string { return f.path }

// TempName is the path of the temporary file being written.
func (f *File) TempName() string { return f.f.Name() }

// Write writes to the temporary file.
func (f *File) Write(p []byte) (int, error) {
	if f.done {
		return 0, fs.ErrClosed
	}
	return f.f.Write(p)
}

// WriteAt writes p at offset off of the temporary file, for formats whose
// header is completed once the rest is written.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if f.done {
		return 0, fs.ErrClosed
	}
	return f.f.WriteAt(p, off)
}

// Commit syncs the temporary file and renames it to the destination. The
// destination's absence is checked again (unless force), so a file that
// appeared during a long write is not replaced either. On error the
// temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return fs.ErrClosed
	}
	f.done = true
	tmp := f.f.Name()
	err := f.f.Sync()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !f.force {
		err = checkAbsent(f.path)
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	// Make the rename itself durable. Not every system can sync a folder
	// (Windows cannot open one for it); the data is safe either way.
	if d, derr := os.Open(filepath.Dir(f.path)); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Discard abandons the write and removes the temporary file. After Commit
// it does nothing, so `defer f.Discard()` is the way to clean up on every
// error path.
func (f *File) Discard() error {
	if f.done {
		return nil
	}
	f.done = true
	tmp := f.f.Name()
	f.f.Close()
	return os.Remove(tmp)
}

// WriteFile writes path with write, atomically: write gets a writer on the
// temporary file that fails with ctx's error once ctx is done, and the file
// is committed only if write returns nil. On any error, cancellation
// included, nothing is left behind and an existing destination is untouched.
func WriteFile(ctx context.Context, path string, force bool, write func(w io.Writer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := Create(path, force)
	if err != nil {
		return err
	}
	defer f.Discard()
	if err := write(ctxWriter{ctx, f}); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.Commit()
}

// ctxWriter checks for cancellation before every write, so a long copy
// stops at the next chunk.
type ctxWriter struct {
	ctx context.Context
	f   *File
}

// WriteAt lets a writer complete a header in place (see File.WriteAt).
func (c ctxWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.f.WriteAt(p, off)
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.f.Write(p)
}
