package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rwkvkit/rwkvkit/fixtures"
)

// writers lists every command that writes a file, as a function of its
// input (the model; for merge also the adapter) and its output.
func writers(model, lora string) map[string]func(out string) []string {
	return map[string]func(out string) []string{
		"convert":  func(out string) []string { return []string{"convert", model, out} },
		"quantize": func(out string) []string { return []string{"quantize", model, out, "--int8", "all", "--device", "cpu"} },
		"merge":    func(out string) []string { return []string{"merge", model, out, "--lora", lora, "--device", "cpu"} },
		"logits":   func(out string) []string { return []string{"logits", model, "--tokens", "1,2", "--out", out} },
	}
}

// Every command that writes refuses to write over one of its inputs, with
// --force too, whatever name the output is given (the input's own, a hard
// link to it); the input stays as it was.
func TestOutputIsNotAnInput(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.st")
	lora := filepath.Join(dir, "lora.st")
	must(t, os.WriteFile(model, mustRead(t, tiny+"st/tiny-rwkv-7v0-834K.st"), 0o644))
	must(t, os.WriteFile(lora, fixtures.TinyRWKV7LoRA, 0o644))
	link := filepath.Join(dir, "link.st")
	must(t, os.Link(model, link))
	before := map[string][]byte{model: mustRead(t, model), lora: mustRead(t, lora)}
	for name, args := range writers(model, lora) {
		outs := []string{model, link}
		if name == "merge" {
			outs = append(outs, lora)
		}
		for _, out := range outs {
			_, stderr, code := rwkvkit(t, append(args(out), "--force")...)
			if code != 2 || !strings.Contains(stderr, "same file as an input") {
				t.Errorf("%s onto %s: exit %d, stderr %q; want 2 and that it is an input", name, filepath.Base(out), code, stderr)
			}
		}
	}
	for path, b := range before {
		if !bytes.Equal(mustRead(t, path), b) {
			t.Errorf("%s changed", path)
		}
	}
}

// An output name whose extension says another format is refused before any
// work, and the error says which extension fits; an extension of no model
// format is accepted.
func TestOutputExtension(t *testing.T) {
	dir := t.TempDir()
	model := tiny + "st/tiny-rwkv-7v0-834K.st"
	lora := filepath.Join(dir, "lora.st")
	must(t, os.WriteFile(lora, fixtures.TinyRWKV7LoRA, 0o644))
	w := writers(model, lora)
	for _, tc := range []struct {
		cmd, out, want string
	}{
		{"convert", "x.rkv", "name it " + filepath.Join(dir, "x.st")},
		{"convert", "x.pth", "name it " + filepath.Join(dir, "x.st")},
		{"quantize", "x.st", "name it " + filepath.Join(dir, "x.rkv")},
		{"quantize", "x.SafeTensors", "name it " + filepath.Join(dir, "x.rkv")},
		{"quantize", "x.pt", "name it " + filepath.Join(dir, "x.rkv")},
		{"merge", "x.st", "name it " + filepath.Join(dir, "x.rkv")},
		{"logits", "x.st", "name it " + filepath.Join(dir, "x.bin")},
		{"logits", "x.rkv", "name it " + filepath.Join(dir, "x.bin")},
	} {
		out := filepath.Join(dir, tc.out)
		_, stderr, code := rwkvkit(t, w[tc.cmd](out)...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, out+":") != 1 || strings.Contains(stderr, "device:") {
			t.Errorf("%s → %s: exit %d, stderr %q; want 2 and %q, the file named once, nothing loaded", tc.cmd, tc.out, code, stderr, tc.want)
		}
		if _, err := os.Lstat(out); err == nil {
			t.Errorf("%s → %s: the file was written", tc.cmd, tc.out)
		}
	}
	// --type is GGUF's: given for a .st, it is refused, not ignored.
	st := filepath.Join(dir, "typed.st")
	if _, stderr, code := rwkvkit(t, "convert", model, st, "--type", "q8_0"); code != 2 || !strings.Contains(stderr, "--type q8_0: only a GGUF output takes a type") {
		t.Errorf("convert → .st --type q8_0: exit %d, %q", code, stderr)
	}
	if _, err := os.Lstat(st); err == nil {
		t.Error("convert → .st --type q8_0: the file was written")
	}
	for cmd, out := range map[string]string{"convert": "ok.safetensors", "quantize": "ok.model", "logits": "ok.f32"} {
		if _, stderr, code := rwkvkit(t, w[cmd](filepath.Join(dir, out))...); code != 0 {
			t.Errorf("%s → %s: exit %d: %s", cmd, out, code, stderr)
		}
	}
}

// An output that exists and is not a regular file (a character device, a
// symbolic link, a named pipe, a folder) is never replaced, --force or not;
// a regular file replaced with --force keeps its permission bits.
func TestOutputKinds(t *testing.T) {
	dir := t.TempDir()
	model := tiny + "st/tiny-rwkv-7v0-834K.st"
	target := filepath.Join(dir, "target")
	must(t, os.WriteFile(target, []byte("target"), 0o644))
	kinds := map[string]func(path string) error{
		"symbolic link": func(p string) error { return os.Symlink(target, p) },
		"named pipe":    func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"folder":        func(p string) error { return os.Mkdir(p, 0o755) },
		// /dev/null's numbers, made here so that a failure harms nothing.
		"character device": func(p string) error { return syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|3) },
	}
	lora := filepath.Join(dir, "lora.st")
	must(t, os.WriteFile(lora, fixtures.TinyRWKV7LoRA, 0o644))
	ext := map[string]string{"convert": ".st", "quantize": ".rkv", "merge": ".rkv", "logits": ".f32"}
	for name, args := range writers(model, lora) {
		for kind, mk := range kinds {
			out := filepath.Join(dir, name+"-"+strings.ReplaceAll(kind, " ", "-")+ext[name])
			if err := mk(out); err != nil {
				t.Logf("cannot make a %s here (%v): not tried", kind, err)
				continue
			}
			before, _ := os.Lstat(out)
			for _, force := range [][]string{nil, {"--force"}} {
				_, stderr, code := rwkvkit(t, append(args(out), force...)...)
				if code != 2 || !strings.Contains(stderr, "is a "+kind) {
					t.Errorf("%s onto a %s %v: exit %d, stderr %q", name, kind, force, code, stderr)
				}
			}
			if after, err := os.Lstat(out); err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
				t.Errorf("%s replaced the %s", name, kind)
			}
		}
		out := filepath.Join(dir, name+"-private"+ext[name])
		must(t, os.WriteFile(out, []byte("old"), 0o600))
		if _, stderr, code := rwkvkit(t, append(args(out), "--force")...); code != 0 {
			t.Errorf("%s --force onto a regular file: exit %d: %s", name, code, stderr)
		}
		if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() <= 3 {
			t.Errorf("%s --force: %v (%v), want a new file with mode 0600", name, fi.Mode(), err)
		}
	}
	if b := mustRead(t, target); string(b) != "target" {
		t.Errorf("the symbolic link's target holds %q", b)
	}
	var left []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), ".rwkvkit-") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
