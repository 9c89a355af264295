//go:build !linux

package atomicfile

// renameExclusive has no system call to use here; renameNoReplace links.
func renameExclusive(tmp, path string) error { return errUnsupported }
