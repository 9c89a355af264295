//go:build !linux

package atomicfile

import "os"

// renameExclusive has no system call to use here; renameNoReplace links.
func renameExclusive(tmp, path string) error { return errUnsupported }

// requestWriteback has no system call to use here; Commit's sync writes all.
func requestWriteback(f *os.File, off, n int64) {}
