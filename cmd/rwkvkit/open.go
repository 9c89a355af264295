package main

import (
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/model"
)

// openModel opens any model file rwkvkit reads; the error names the file.
func openModel(path string) (*format.Source, error) { return model.Open(path) }
