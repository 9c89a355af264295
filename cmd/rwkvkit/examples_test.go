package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every subcommand's help has Examples, and they run as written from the
// repository's root (here: a folder whose fixtures/ is the repository's),
// in the order a user would try them; lines reading stdin through a pipe
// are left to the tests of --prompt-file and tokenize.
func TestHelpExamples(t *testing.T) {
	root := newRoot()
	order := []string{"convert", "quantize", "merge", "inspect", "verify", "logits", "run", "tokenize", "version", "demo"}
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s: no Examples in its help", c.Name())
		}
	}
	chdirBesideFixtures(t)
	for _, name := range order {
		c, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(c.Example, "\n") {
			line, _, _ = strings.Cut(line, " #")
			line = strings.TrimSpace(line)
			if strings.Contains(line, "|") || name == "demo" {
				continue // stdin and the demo have tests of their own
			}
			args := shellWords(t, line)
			if args[0] != "rwkvkit" {
				t.Fatalf("%s example %q does not start with rwkvkit", name, line)
			}
			if out, err := run(t, args[1:]...); err != nil {
				t.Errorf("%s: %v\n%s", line, err, out)
			}
		}
	}
}

// chdirBesideFixtures makes the test's working folder a new temporary one
// holding a link to the repository's fixtures, so that the examples' paths
// (fixtures/…) resolve and what they write is removed after the test.
func chdirBesideFixtures(t *testing.T) {
	t.Helper()
	fixtures, err := filepath.Abs("../../fixtures")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(fixtures, filepath.Join(dir, "fixtures")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
}

// shellWords splits a command line as a POSIX shell would for the quoting
// the examples use: '…' literal, "…" literal here, \ inside neither.
func shellWords(t *testing.T, line string) []string {
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(ch)
		case ch == '\'' || ch == '"':
			quote, in = ch, true
		case ch == ' ':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quotes in %q", line)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// The README's session on the tiny model runs as written from the
// repository's root.
func TestReadmeTinySession(t *testing.T) {
	readme := string(mustRead(t, "../../README.md"))
	_, block, ok := strings.Cut(readme, "The same on the tiny RWKV-7 in `fixtures/`")
	if !ok {
		t.Fatal("README has no session on the tiny model")
	}
	_, block, _ = strings.Cut(block, "```\n")
	block, _, _ = strings.Cut(block, "```")
	chdirBesideFixtures(t)
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		line, _, _ = strings.Cut(line, " #")
		args := shellWords(t, strings.TrimSpace(line))
		if args[0] != "rwkvkit" {
			t.Fatalf("README line %q", line)
		}
		if out, err := run(t, args[1:]...); err != nil {
			t.Errorf("%s: %v\n%s", line, err, out)
		}
		lines++
	}
	if lines < 5 {
		t.Errorf("%d commands in the README's tiny session", lines)
	}
}
