package serialize

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// A digest computed while the artifact is written replaces its placeholder
// in the header; the file then reads back whole, checksums included.
func TestFinalizeRewritesHeader(t *testing.T) {
	src, want := memSource(t, mixedSpecs, 3)
	path := filepath.Join(t.TempDir(), "out.rkv")
	placeholder := FileDigest{Name: "model.st", Size: 1234, SHA256: strings.Repeat("0", 64)}
	final := FileDigest{Name: "model.st", Size: 1234, SHA256: strings.Repeat("ab", 32)}
	opts := &Options{
		Provenance: Provenance{Tool: "rwkvkit", Sources: []FileDigest{placeholder}},
		Finalize: func() (Provenance, error) {
			return Provenance{Tool: "rwkvkit", Sources: []FileDigest{final}}, nil
		},
	}
	if err := WriteFile(context.Background(), path, src, false, opts); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeaderFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Provenance.Sources) != 1 || h.Provenance.Sources[0] != final {
		t.Fatalf("provenance %+v, want the final digest", h.Provenance.Sources)
	}
	back, err := readAll(mustRead(t, path))
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range back.Tensors {
		b, err := tn.Bytes()
		if err != nil || !bytes.Equal(b, want[tn.Name]) {
			t.Fatalf("tensor %q after the header rewrite: %v", tn.Name, err)
		}
	}

	// A final provenance of another size cannot be patched in.
	opts.Finalize = func() (Provenance, error) {
		return Provenance{Tool: "rwkvkit", Sources: []FileDigest{{Name: "a-longer-name.st", Size: 1234, SHA256: strings.Repeat("ab", 32)}}}, nil
	}
	if err := WriteFile(context.Background(), path+"2", src, false, opts); err == nil || !strings.Contains(err.Error(), "size") {
		t.Errorf("a provenance of another size was accepted: %v", err)
	}
	// A plain writer cannot go back to the header.
	if err := Write(&bytes.Buffer{}, src, opts); err == nil {
		t.Error("Finalize with a writer that cannot write at an offset was accepted")
	}
}
