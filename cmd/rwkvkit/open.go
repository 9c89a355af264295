package main

import (
	"rwkvkit/format"

	// The readers register their formats with format.Open.
	_ "rwkvkit/pth"
	_ "rwkvkit/safetensors"
	_ "rwkvkit/serialize"
)

// openModel opens any model file rwkvkit reads; the error names the file.
func openModel(path string) (*format.Source, error) {
	return format.Open(path)
}
