//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package atomicfile

import "os"

// tryLock cannot lock here: stale temporary files are not removed.
func tryLock(f *os.File) (bool, error) { return false, errUnsupported }

func unlock(f *os.File) {}
