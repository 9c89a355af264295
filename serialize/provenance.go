package serialize

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Provenance records how an artifact was made. The command line fills it
// in; the package writes and reads it without interpreting it.
type Provenance struct {
	Tool        string `json:"tool"` // "rwkvkit"
	ToolVersion string `json:"tool_version"`
	// Sources are the model files the artifact was made from.
	Sources []FileDigest `json:"sources"`
	// LoRAs are the adapters merged into it, in merge order.
	LoRAs []LoRA `json:"loras,omitempty"`
	// LoRAPatterns set the alpha of every adapter for the tensors whose
	// web-rwkv name they match; the last match wins.
	LoRAPatterns []LoRAPattern `json:"lora_patterns,omitempty"`
	Quantization Quantization  `json:"quantization"`
	// Extra holds anything else worth recording (free-form).
	Extra map[string]string `json:"extra,omitempty"`
}

// A FileDigest identifies an input file.
type FileDigest struct {
	Name   string `json:"name"` // base name, as the user gave it
	Size   int64  `json:"size_bytes"`
	SHA256 string `json:"sha256"` // lowercase hex
}

// A LoRA is one merged adapter and the alpha it was merged with.
type LoRA struct {
	FileDigest
	Alpha float64 `json:"alpha"`
}

// A LoRAPattern is a regular expression (Go's syntax) on tensor names and
// the alpha it sets.
type LoRAPattern struct {
	Regexp string  `json:"regexp"`
	Alpha  float64 `json:"alpha"`
}

// Quantization records which layers were quantized to what, in the
// command line's SPEC syntax ("all", "N", "0-5,9"); empty means none.
type Quantization struct {
	Int8 string `json:"int8,omitempty"`
	NF4  string `json:"nf4,omitempty"`
	SF4  string `json:"sf4,omitempty"`
	// Plan is what the rules came to, layer by layer, once the later of
	// two covering a layer won: "Int8 layers 12-23; NF4 layers 0-11".
	Plan   string `json:"plan,omitempty"`
	Device string `json:"device,omitempty"` // what computed it, e.g. "CPU, 16 threads" or "GPU NVIDIA H100 (vulkan, discrete-gpu)"
}

// DigestFile returns the base name, size and SHA-256 of the file at path.
func DigestFile(path string) (FileDigest, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileDigest{}, err
	}
	defer f.Close()
	return Digest(filepath.Base(path), f)
}

// Digest reads r to its end and returns its size and SHA-256 under name.
func Digest(name string, r io.Reader) (FileDigest, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return FileDigest{}, fmt.Errorf("%s: %w", name, err)
	}
	return FileDigest{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func (p *Provenance) validate() error {
	if len(p.Sources) > MaxEntries || len(p.LoRAs) > MaxEntries || len(p.LoRAPatterns) > MaxEntries || len(p.Extra) > MaxEntries {
		return fmt.Errorf("provenance has more than %d entries in a list", MaxEntries)
	}
	check := func(what, s string, limit int) error {
		if len(s) > limit {
			return fmt.Errorf("provenance %s is %d bytes, more than %d", what, len(s), limit)
		}
		return nil
	}
	digest := func(d FileDigest) error {
		if err := check("file name", d.Name, MaxNameLen); err != nil {
			return err
		}
		if d.SHA256 != "" {
			if b, err := hex.DecodeString(d.SHA256); err != nil || len(b) != sha256.Size {
				return fmt.Errorf("provenance: %s: sha256 %q is not 64 hex digits", d.Name, d.SHA256)
			}
		}
		return nil
	}
	for _, d := range p.Sources {
		if err := digest(d); err != nil {
			return err
		}
	}
	for _, l := range p.LoRAs {
		if err := digest(l.FileDigest); err != nil {
			return err
		}
	}
	for _, lp := range p.LoRAPatterns {
		if err := check("LoRA pattern", lp.Regexp, MaxStringLen); err != nil {
			return err
		}
	}
	for k, v := range p.Extra {
		if err := check("key", k, MaxNameLen); err != nil {
			return err
		}
		if err := check("value", v, MaxStringLen); err != nil {
			return err
		}
	}
	for _, s := range []string{p.Tool, p.ToolVersion, p.Quantization.Int8, p.Quantization.NF4, p.Quantization.SF4, p.Quantization.Device} {
		if err := check("field", s, MaxStringLen); err != nil {
			return err
		}
	}
	return nil
}
