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
	Tool        string // "rwkvkit"
	ToolVersion string
	// Sources are the model files the artifact was made from.
	Sources []FileDigest
	// LoRAs are the adapters merged into it, in merge order.
	LoRAs        []LoRA
	Quantization Quantization
	// Extra holds anything else worth recording (free-form).
	Extra map[string]string
}

// A FileDigest identifies an input file.
type FileDigest struct {
	Name   string // base name, as the user gave it
	Size   int64
	SHA256 string // lowercase hex
}

// A LoRA is one merged adapter and the alpha it was merged with.
type LoRA struct {
	FileDigest
	Alpha float64
}

// Quantization records which layers were quantized to what, in the
// command line's SPEC syntax ("all", "N", "0-5,9"); empty means none.
type Quantization struct {
	Int8   string
	NF4    string
	SF4    string
	Device string // what computed it, e.g. "cpu" or "NVIDIA H100 (Vulkan)"
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
	if len(p.Sources) > MaxEntries || len(p.LoRAs) > MaxEntries || len(p.Extra) > MaxEntries {
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
