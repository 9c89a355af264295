package atomicfile

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameExclusive is renameat2(RENAME_NOREPLACE) (Linux 3.15 and later,
// on the file systems that implement it).
func renameExclusive(tmp, path string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return errUnsupported
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: path, Err: err}
	}
	return nil
}

// requestWriteback has Linux start writing the n bytes at off of f to the
// disk (sync_file_range SYNC_FILE_RANGE_WRITE) without waiting for them. It
// is a hint: Commit's sync reports any error.
func requestWriteback(f *os.File, off, n int64) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE) })
	}
}
