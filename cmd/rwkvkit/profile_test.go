package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --cpuprofile writes a profile to a new file only: an existing file, a
// symbolic link or a folder at its path is refused and left as it was.
func TestCPUProfileNewFileOnly(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	must(t, os.WriteFile(target, []byte("keep"), 0o644))
	for name, c := range map[string]struct {
		make func(p string) error
		want string
	}{
		"regular file":  {func(p string) error { return os.WriteFile(p, []byte("keep"), 0o644) }, "the file exists"},
		"symbolic link": {func(p string) error { return os.Symlink(target, p) }, "is a symbolic link"},
		"folder":        {func(p string) error { return os.Mkdir(p, 0o755) }, "is a folder"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		must(t, c.make(p))
		before, _ := os.Lstat(p)
		_, stderr, code := rwkvkit(t, "tokenize", "hi", "--cpuprofile", p)
		if code != 2 || !strings.Contains(stderr, p) || !strings.Contains(stderr, c.want) {
			t.Errorf("onto a %s: exit %d, stderr %q", name, code, stderr)
		}
		if after, err := os.Lstat(p); err != nil || after.Mode() != before.Mode() || after.Size() != before.Size() || !os.SameFile(before, after) {
			t.Errorf("the %s was replaced", name)
		}
	}
	if b := mustRead(t, target); string(b) != "keep" || string(mustRead(t, filepath.Join(dir, "regular-file"))) != "keep" {
		t.Error("a file was written through")
	}
	p := filepath.Join(dir, "new.pprof")
	if _, stderr, code := rwkvkit(t, "tokenize", "hi", "--cpuprofile", p); code != 0 {
		t.Fatalf("onto a new path: exit %d: %s", code, stderr)
	}
	if b := mustRead(t, p); !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) { // pprof's profiles are gzipped
		t.Errorf("the profile starts % x", b[:min(len(b), 8)])
	}
}
