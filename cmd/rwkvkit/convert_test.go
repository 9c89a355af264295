package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The converter's output equals web-rwkv's own convert_safetensors.py output
// byte for byte, for every tiny model (names, dtypes, shapes, data, header).
func TestConvertMatchesWebRWKV(t *testing.T) {
	dir := t.TempDir()
	for _, m := range tinyModels {
		t.Run(m, func(t *testing.T) {
			out := filepath.Join(dir, m+".st")
			if _, err := run(t, "convert", tiny+m+".pth", out); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(tiny + "st/" + m + ".st")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("converted file differs from web-rwkv's (%d vs %d bytes)", len(got), len(want))
			}
			// Converting the converted file again is a no-op.
			again := filepath.Join(dir, m+".again.st")
			if _, err := run(t, "convert", out, again); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(again); !bytes.Equal(b, want) {
				t.Fatal("converting a converted file changed it")
			}
		})
	}
}

func TestConvertRefusesOverwrite(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.st")
	if err := os.WriteFile(out, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := rwkvkit(t, "convert", tiny+tinyModels[4]+".pth", out)
	if code != 2 || !strings.Contains(stderr, "exists") {
		t.Fatalf("exit %d, stderr %q; want 2 and a message that the file exists", code, stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep" {
		t.Fatal("existing output was replaced without --force")
	}
	if _, _, code := rwkvkit(t, "convert", "--force", tiny+tinyModels[4]+".pth", out); code != 0 {
		t.Fatalf("--force: exit %d", code)
	}
}

// Bad input exits with status 2, names the file and what it is, and writes nothing.
func TestBadInputExitStatus(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"empty.pth":     nil,
		"lfs.st":        []byte("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"),
		"page.pth":      []byte("<!DOCTYPE html><html><body>404</body></html>"),
		"random.bin":    bytes.Repeat([]byte{0x13, 0x37, 0xde, 0xad}, 300),
		"truncated.pth": mustRead(t, tiny+tinyModels[4]+".pth")[:5000],
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			in := filepath.Join(dir, name)
			if err := os.WriteFile(in, data, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, name+".out.st")
			_, stderr, code := rwkvkit(t, "convert", in, out)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, in) {
				t.Errorf("error does not name the file: %q", stderr)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
				t.Errorf("panicked: %s", stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output written for bad input")
			}
			if _, _, code := rwkvkit(t, "inspect", in); code != 2 {
				t.Errorf("inspect: exit %d, want 2", code)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".out.st") {
			t.Errorf("left behind %s", e.Name())
		}
	}
}
