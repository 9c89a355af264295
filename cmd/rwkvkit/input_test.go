package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// --text is literal text for logits and verify alike; --text-file reads a
// file, or stdin for -; each gives the same tokens.
func TestTextInputs(t *testing.T) {
	dir := t.TempDir()
	model := tiny + "tiny-rwkv-7v0-834K.pth"
	text := "The river \"ran\" <fast>\n\nto the sea."
	file := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i, c := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"--text", text}},
		{"", []string{"--text-file", file}},
		{text, []string{"--text-file", "-"}},
	} {
		out := filepath.Join(dir, "logits.f32")
		os.Remove(out)
		if _, _, err := runStdin(t, c.stdin, append([]string{"logits", model, "--out", out}, c.args...)...); err != nil {
			t.Fatalf("logits %v: %v", c.args, err)
		}
		got := mustRead(t, out)
		if len(got) != 4*256*len(text) {
			t.Errorf("logits %v: %d bytes, want %d positions", c.args, len(got), len(text))
		}
		if i == 0 {
			want = got
		} else if !bytes.Equal(got, want) {
			t.Errorf("logits %v differ from those of --text", c.args)
		}
		stdout, _, err := runStdin(t, c.stdin, append([]string{"verify", model, "--ref", model, "--max-kl", "0"}, c.args...)...)
		if err != nil || !strings.Contains(stdout, fmt.Sprintf("tokens:           %d\n", len(text))) {
			t.Errorf("verify %v: %v\n%s", c.args, err, stdout)
		}
	}
	for _, args := range [][]string{{"--text", "a", "--tokens", "1"}, {"--text", "a", "--text-file", file}, {"--tokens", "1,x"}} {
		if _, _, err := runStdin(t, "", append([]string{"verify", model}, args...)...); err == nil {
			t.Errorf("verify %v was accepted", args)
		}
	}
	// A token the model's vocabulary lacks is named once, with its place,
	// before any logits are computed or written.
	out := filepath.Join(t.TempDir(), "l.f32")
	for _, cmd := range [][]string{{"logits", model, "--out", out}, {"verify", model}, {"verify", model, "--ref", model}} {
		_, stderr, code := rwkvkit(t, append(cmd, "--tokens", "1,2,256")...)
		if want := "--tokens: token 256 at position 2 is outside the model's vocabulary of 256"; code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", cmd, code, stderr, want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("logits wrote a file")
	}
}

// The README's chat example sends real newlines: the World tokenizer
// reads "\n\n" as token 261, and no example passes a backslash-n inside
// double quotes (which the shell leaves as two characters).
func TestReadmeChatPrompt(t *testing.T) {
	readme := string(mustRead(t, "../../README.md"))
	if bad := regexp.MustCompile(`--prompt "[^"]*\\n`).FindString(readme); bad != "" {
		t.Errorf("README passes a literal backslash-n: %s", bad)
	}
	m := regexp.MustCompile(`printf '([^']*)' \| rwkvkit run \S+ --prompt-file -`).FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README has no chat example reading the prompt from stdin")
	}
	prompt := strings.ReplaceAll(m[1], `\n`, "\n") // what printf writes
	out, _, err := runStdin(t, prompt, "tokenize")
	if err != nil || !strings.Contains(","+strings.TrimSpace(out)+",", ",261,") {
		t.Errorf("the chat prompt tokenizes to %s (%v), without 261 for the blank line", out, err)
	}
}
