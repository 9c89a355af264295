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
