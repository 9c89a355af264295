// Package atomicfile writes a file so that readers only ever see the old
// file or the complete new one: the data goes to a temporary file in the
// same folder, which is synced and moved onto the destination at the end.
// With [Options.NoSync] the move does not wait for the sync, which the
// system then does in its own time: faster, as cp is, but not durable.
//
// An existing destination is replaced only when asked to (force), and only
// if it is a regular file: a device, a symbolic link, a named pipe, a socket
// or a folder at the destination is never replaced. Without force the final
// move is itself the check: it fails if the destination appeared meanwhile,
// so of two writers racing for one new path exactly one succeeds. A replaced
// file keeps its permission bits.
//
// The temporary file has a short fixed-length name derived from the
// destination's (".rwkvkit-" and 16 hex digits, then ".tmp"), so any
// destination name the file system allows can be written, and it is locked
// while it is written. A write that fails or is cancelled removes it; one
// whose process was killed outright (SIGKILL, a power cut) leaves it behind,
// unlocked, and the next write of the same destination removes it first.
package atomicfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Errors a caller can tell apart with errors.Is; each is wrapped in an
// *fs.PathError naming the destination.
var (
	// ErrExists: the destination exists and force is not set.
	// errors.Is(err, fs.ErrExist) holds as well.
	ErrExists error = existsError{}
	// ErrNotRegular: the destination exists and is not a regular file; it
	// is never replaced, force or not.
	ErrNotRegular = errors.New("is not a regular file (never replaced, even with force)")
	// ErrSameFile: the destination is one of the files the write reads.
	ErrSameFile = errors.New("is the same file as an input")
	// ErrBusy: another process is writing the same destination now.
	ErrBusy = errors.New("is being written by another process")
)

// existsError is ErrExists: it is fs.ErrExist too, without repeating
// fs.ErrExist's text ("file already exists") after its own.
type existsError struct{}

func (existsError) Error() string        { return "already exists (not replaced without force)" }
func (existsError) Is(target error) bool { return target == fs.ErrExist }

// Options tune Create and WriteFile. The zero value is a durable write
// that replaces nothing.
type Options struct {
	// Force replaces an existing regular file at the destination.
	Force bool

	// NoSync commits without waiting for the data to reach the disk, as cp
	// does: the temporary file is moved into place as soon as it is
	// written, and the system writes it to the disk when it gets to it.
	// Readers still see the old file or the complete new one, and a process
	// that is killed after Commit loses nothing. What is lost is durability:
	// after a power cut or an operating-system crash in the half minute or
	// so that follows (the system's writeback delay), the destination may be
	// missing, empty or cut short, and a replaced file may be gone.
	NoSync bool
}

// A File is a pending write of a destination path. Its data goes to a
// temporary file until Commit; Discard (or a failed Commit) removes it.
type File struct {
	path string
	opts Options
	f    *os.File
	done bool

	written, flushed int64 // bytes written by Write; those handed to the writeback goroutine
	wb               *writeback
}

// writebackBytes is how much Write lets pile up before it has the system
// start writing it to the disk, so that the disk works while the rest is
// computed and Commit's sync has little left to wait for.
const writebackBytes = 8 << 20

// syncs counts the requests to write data to the disk (see Syncs).
var syncs atomic.Int64

// Syncs returns how many requests to write data to the disk this package
// has made in this process: a sync of a file or folder, or the start of a
// file's writeback. Writes with NoSync make none.
func Syncs() int64 { return syncs.Load() }

// TempPrefix starts the name of every temporary file of this package.
const TempPrefix = ".rwkvkit-"

// tempName is the temporary file's name for the destination base name: a
// fixed length whatever the destination's, and the same on every run, so a
// stale one can be found again.
func tempName(base string) string {
	h := sha256.Sum256([]byte(base))
	return TempPrefix + hex.EncodeToString(h[:8]) + ".tmp"
}

// Check reports why path cannot be written, before any work is done: it
// exists and is not a regular file ([ErrNotRegular]), it is the same file
// (device and inode, whatever the names) as one of inputs ([ErrSameFile]),
// or it exists and force is not set ([ErrExists]). Inputs that cannot be
// stat'ed are skipped; opening them will say why.
func Check(path string, force bool, inputs ...string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return notRegular(path, fi)
	}
	for _, in := range inputs {
		if ifi, err := os.Stat(in); err == nil && os.SameFile(fi, ifi) {
			return &fs.PathError{Op: "create", Path: path, Err: fmt.Errorf("%w %s", ErrSameFile, in)}
		}
	}
	if !force {
		return &fs.PathError{Op: "create", Path: path, Err: ErrExists}
	}
	return nil
}

func notRegular(path string, fi fs.FileInfo) error {
	return &fs.PathError{Op: "create", Path: path, Err: fmt.Errorf("it %s: %w", kind(fi.Mode()), ErrNotRegular)}
}

// kind says what a file that is not regular is.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "is a symbolic link"
	case m.IsDir():
		return "is a folder"
	case m&fs.ModeCharDevice != 0:
		return "is a character device"
	case m&fs.ModeDevice != 0:
		return "is a block device"
	case m&fs.ModeNamedPipe != 0:
		return "is a named pipe"
	case m&fs.ModeSocket != 0:
		return "is a socket"
	}
	return "is not a regular file"
}

// Create starts writing path. It fails as [Check] does (without inputs,
// with opts.Force) before anything is written. The temporary file is created in path's
// folder, so the final move stays on one file system, with the usual
// permissions of a new file (0666 less the umask); a stale one left by a
// killed writer of the same path is removed first, and one that another
// live process is writing makes Create fail with [ErrBusy].
func Create(path string, opts Options) (*File, error) {
	if err := Check(path, opts.Force); err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp := filepath.Join(dir, tempName(base))
	for range 4 {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			if err := removeStale(path, tmp); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		// A writer that found this file before it was locked may have
		// taken it for stale and removed it: the lock is only worth
		// something on a file that is still the one at tmp.
		if err := lockWait(f); err != nil {
			f.Close()
			return nil, err
		}
		if isAt(f, tmp) {
			return &File{path: path, opts: opts, f: f}, nil
		}
		f.Close()
	}
	return nil, &fs.PathError{Op: "create", Path: path, Err: fmt.Errorf("%w (its temporary file %s keeps changing)", ErrBusy, tmp)}
}

// removeStale removes the temporary file tmp of path if no process holds
// its lock: its writer was killed before it could clean up. A writer locks
// its file right after creating it, so a file is taken for stale only once
// it has stayed unlocked for staleAfter.
func removeStale(path, tmp string) error {
	fi, err := os.Lstat(tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // gone meanwhile
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &fs.PathError{Op: "create", Path: path, Err: fmt.Errorf("the name of its temporary file %s is taken by something that %s", tmp, kind(fi.Mode()))}
	}
	f, err := os.Open(tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for waited := time.Duration(0); ; waited += staleStep {
		locked, err := tryLock(f)
		if errors.Is(err, errUnsupported) {
			// Without locks a stale file cannot be told from a live one.
			return &fs.PathError{Op: "create", Path: path, Err: fmt.Errorf("%w? its temporary file %s exists (remove it if no rwkvkit is writing %s)", ErrBusy, tmp, path)}
		}
		if err != nil {
			return err
		}
		if !locked {
			return &fs.PathError{Op: "create", Path: path, Err: fmt.Errorf("%w (its temporary file %s is locked)", ErrBusy, tmp)}
		}
		if !isAt(f, tmp) {
			return nil // committed or removed meanwhile
		}
		if waited >= staleAfter {
			break
		}
		unlock(f)
		time.Sleep(staleStep)
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// How long a temporary file must stay unlocked to be taken for stale, and
// how often that is checked.
const (
	staleAfter = 500 * time.Millisecond
	staleStep  = 10 * time.Millisecond
)

// isAt reports whether the open file f is the file now at path.
func isAt(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Lstat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// lockWait takes f's lock, waiting out a writer that is checking whether
// the file is stale (it holds the lock for a moment only).
func lockWait(f *os.File) error {
	for i := 0; ; i++ {
		ok, err := tryLock(f)
		if errors.Is(err, errUnsupported) {
			return nil // a file system without locks: no stale files can be told apart either
		}
		if ok || err != nil {
			return err
		}
		if i == 200 {
			return fmt.Errorf("%s: %w (it stays locked)", f.Name(), ErrBusy)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Name is the destination path.
func (f *File) Name() string { return f.path }

// TempName is the path of the temporary file being written.
func (f *File) TempName() string { return f.f.Name() }

// Write writes to the temporary file. Unless NoSync is set, every
// writebackBytes written are handed to a goroutine that has the system
// start writing them to the disk, so that the writer never waits for it.
func (f *File) Write(p []byte) (int, error) {
	if f.done {
		return 0, fs.ErrClosed
	}
	n, err := f.f.Write(p)
	f.written += int64(n)
	if !f.opts.NoSync && f.written-f.flushed >= writebackBytes {
		if f.wb == nil {
			f.wb = startWriteback(f.f)
		}
		if f.wb.request(f.flushed, f.written-f.flushed) {
			f.flushed = f.written
		}
	}
	return n, err
}

// writeback has the system start writing ranges of a file to the disk
// (see requestWriteback), on a goroutine of its own: the request can wait
// for the disk's queue.
type writeback struct {
	ranges chan [2]int64 // offset, length
	exited chan struct{}
}

func startWriteback(f *os.File) *writeback {
	w := &writeback{ranges: make(chan [2]int64, 4), exited: make(chan struct{})}
	go func() {
		defer close(w.exited)
		for r := range w.ranges {
			syncs.Add(1)
			requestWriteback(f, r[0], r[1])
		}
	}()
	return w
}

// request queues the range off, n unless the goroutine is behind; then it
// reports false, and the range is asked for again with the next one.
func (w *writeback) request(off, n int64) bool {
	select {
	case w.ranges <- [2]int64{off, n}:
		return true
	default:
		return false
	}
}

// stop waits for the requests queued so far. w may be nil.
func (w *writeback) stop() {
	if w != nil {
		close(w.ranges)
		<-w.exited
	}
}

// WriteAt writes p at offset off of the temporary file, for formats whose
// header is completed once the rest is written.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if f.done {
		return 0, fs.ErrClosed
	}
	return f.f.WriteAt(p, off)
}

// Commit syncs the temporary file (unless NoSync is set) and moves it to
// the destination. Without Force the move fails if the destination exists
// by then ([ErrExists]), atomically: no check-then-rename window. With Force
// an existing regular file is replaced, and its permission bits carry over
// to the new one; any other kind of file is not ([ErrNotRegular]). On error
// the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return fs.ErrClosed
	}
	f.done = true
	f.wb.stop()
	tmp := f.f.Name()
	var err error
	if !f.opts.NoSync {
		syncs.Add(1)
		err = f.f.Sync()
	}
	if err == nil {
		err = f.move(tmp)
	}
	if err != nil {
		os.Remove(tmp)
	}
	// The lock goes with the last descriptor, once tmp's name is gone.
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err != nil || f.opts.NoSync {
		return err
	}
	// Make the move itself durable. Not every system can sync a folder;
	// the data is safe either way.
	if d, derr := os.Open(filepath.Dir(f.path)); derr == nil {
		syncs.Add(1)
		d.Sync()
		d.Close()
	}
	return nil
}

func (f *File) move(tmp string) error {
	if !f.opts.Force {
		err := renameNoReplace(tmp, f.path)
		if errors.Is(err, fs.ErrExist) {
			return &fs.PathError{Op: "create", Path: f.path, Err: ErrExists}
		}
		return err
	}
	fi, err := os.Lstat(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return notRegular(f.path, fi)
	default:
		if err := f.f.Chmod(fi.Mode().Perm()); err != nil {
			return err
		}
	}
	return os.Rename(tmp, f.path)
}

// renameNoReplace moves tmp to path unless path exists (fs.ErrExist then),
// the first way of noReplace that works here.
func renameNoReplace(tmp, path string) error {
	for _, move := range noReplace {
		if err := move(tmp, path); !errors.Is(err, errUnsupported) {
			return err
		}
	}
	return errUnsupported
}

// noReplace lists the ways to move a file without replacing one, best
// first; each returns errUnsupported where it cannot work. Where the kernel
// or file system cannot rename without replacing, a hard link does the
// same; where neither works, the destination is first claimed with an
// exclusive create, which keeps the guarantee at the cost of an empty file
// at the destination until the rename (and after it, if the process is
// killed in between).
var noReplace = []func(tmp, path string) error{renameExclusive, linkExclusive, claimExclusive}

func linkExclusive(tmp, path string) error {
	switch err := os.Link(tmp, path); {
	case err == nil:
		return os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		return err
	}
	return errUnsupported
}

func claimExclusive(tmp, path string) error {
	claim, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	claim.Close()
	return os.Rename(tmp, path)
}

// errUnsupported: the file system cannot do this; try another way.
var errUnsupported = errors.New("not supported here")

// Discard abandons the write and removes the temporary file. After Commit
// it does nothing, so `defer f.Discard()` is the way to clean up on every
// error path.
func (f *File) Discard() error {
	if f.done {
		return nil
	}
	f.done = true
	f.wb.stop()
	tmp := f.f.Name()
	err := os.Remove(tmp)
	f.f.Close()
	return err
}

// WriteFile writes path with write, atomically: write gets a writer on the
// temporary file that fails with ctx's error once ctx is done, and the file
// is committed only if write returns nil. On any error, cancellation
// included, nothing is left behind and an existing destination is untouched.
func WriteFile(ctx context.Context, path string, opts Options, write func(w io.Writer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := Create(path, opts)
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
