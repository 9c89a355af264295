package main

import (
	"github.com/rwkvkit/rwkvkit/format"

	// The readers register their formats with format.Open.
	_ "github.com/rwkvkit/rwkvkit/pth"
	_ "github.com/rwkvkit/rwkvkit/safetensors"
	_ "github.com/rwkvkit/rwkvkit/serialize"
)

// openModel opens any model file rwkvkit reads; the error names the file.
func openModel(path string) (*format.Source, error) {
	return format.Open(path)
}
