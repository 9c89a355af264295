//go:build !linux

package atomicfile

import "os"

// renameExclusive has no system call to use here; renameNoReplace links.
func renameExclusive(tmp, path string) error { return errUnsupported }

// startWriteback has no system call to use here; Commit's sync writes all.
func startWriteback(f *os.File, off, n int64) {}
