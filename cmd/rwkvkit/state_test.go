package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// A prompt A then B in one run computes exactly what A, saved with
// --save-state, then B from the saved state computes: the same logits bit
// for bit, the same sampled text for a seed, and verify of the model
// against itself from the state agrees exactly.
func TestSaveStateResumes(t *testing.T) {
	dir := t.TempDir()
	const a, b = "The river ", "ran to the sea"
	for _, m := range tinyModels {
		t.Run(m, func(t *testing.T) {
			model := tiny + m + ".pth"
			state := filepath.Join(dir, m+".state.rkv")
			// -n 0 reads the prompt only: no text, no seed, the file named.
			stdout, stderr, err := runStdin(t, "", "run", model, "--prompt", a, "-n", "0", "--save-state", state)
			if err != nil {
				t.Fatal(err)
			}
			if stdout != "" || strings.Contains(stderr, "seed:") || !strings.Contains(stderr, "saved the state after the prompt to "+state) {
				t.Errorf("run -n 0 --save-state: stdout %q, stderr %q", stdout, stderr)
			}
			// A saved state records no tool, and inspect prints no empty
			// line for it.
			if out, err := run(t, "inspect", state, "--tensors=false"); err != nil || !strings.Contains(out, "contents:   state of ") || strings.Contains(out, "made by") {
				t.Errorf("inspect of the state: %v\n%s", err, out)
			}
			whole, part := filepath.Join(dir, m+".ab.f32"), filepath.Join(dir, m+".b.f32")
			if _, err := run(t, "logits", model, "--text", a+b, "--out", whole); err != nil {
				t.Fatal(err)
			}
			if _, err := run(t, "logits", model, "--state", state, "--text", b, "--out", part); err != nil {
				t.Fatal(err)
			}
			w, p := mustRead(t, whole), mustRead(t, part)
			if len(p) != 4*256*len(b) || !bytes.Equal(w[len(w)-len(p):], p) {
				t.Errorf("logits of B from the saved state differ from those of A+B")
			}
			one, _, err := runStdin(t, "", "run", model, "--prompt", a+b, "-n", "32", "--seed", "9")
			if err != nil {
				t.Fatal(err)
			}
			resumed, _, err := runStdin(t, "", "run", model, "--state", state, "--prompt", b, "-n", "32", "--seed", "9")
			if err != nil {
				t.Fatal(err)
			}
			if one != resumed {
				t.Errorf("resumed run wrote %q, one run %q", resumed, one)
			}
			out, err := run(t, "verify", model, "--ref", model, "--state", state, "--text", b, "--max-dlogit", "0")
			if err != nil {
				t.Errorf("verify from the state: %v\n%s", err, out)
			}
		})
	}
}

// --save-state does not replace a file without --force, and refuses before
// loading the model; a state that does not fit the model is an error naming
// the file.
func TestStateErrors(t *testing.T) {
	dir := t.TempDir()
	v7, v6 := tiny+"tiny-rwkv-7v0-834K.pth", tiny+"tiny-rwkv-6v0-1m.pth"
	state := filepath.Join(dir, "s.rkv")
	if _, err := run(t, "run", v7, "--prompt", "x", "-n", "0", "--save-state", state); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "run", v7, "--prompt", "y", "-n", "0", "--save-state", state); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("replaced the state without --force: %v", err)
	}
	if _, err := run(t, "run", v7, "--prompt", "y", "-n", "0", "--save-state", state, "--force"); err != nil {
		t.Errorf("--force: %v", err)
	}
	_, stderr, code := rwkvkit(t, "logits", v6, "--state", state, "--tokens", "1", "--out", filepath.Join(dir, "l.f32"))
	if code != 2 || !strings.Contains(stderr, state) || !strings.Contains(stderr, "state") {
		t.Errorf("a v7 state into a v6 model: exit %d, %q", code, stderr)
	}
}
