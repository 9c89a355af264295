package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// printJSON writes v as indented JSON, with <, > and & as they are.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// written is what convert, quantize and merge report about their output.
type written struct {
	File            string  `json:"file"`
	Format          string  `json:"format"`
	Tensors         int     `json:"tensors"`
	Parameters      int64   `json:"parameters"`
	InputSizeBytes  int64   `json:"input_size_bytes"`
	OutputSizeBytes int64   `json:"output_size_bytes"`
	BitsPerWeight   float64 `json:"bits_per_weight"`
	Device          string  `json:"device,omitempty"` // quantize and merge
}

// report prints w as JSON on stdout, or as a line on stderr; what
// describes the output in the line.
func (wr written) report(stdout, stderr io.Writer, asJSON bool, what string) error {
	if asJSON {
		return printJSON(stdout, wr)
	}
	_, err := fmt.Fprintf(stderr, "wrote %s (%d tensors%s; %s → %s, %.2f bits per weight)\n",
		wr.File, wr.Tensors, what, humanBytes(wr.InputSizeBytes), humanBytes(wr.OutputSizeBytes), wr.BitsPerWeight)
	return err
}
