package main

import (
	"regexp"
	"strings"
	"testing"
)

// rwkvkit version and --version print the version from the build info and
// the toolchain; -v is not version.
func TestVersion(t *testing.T) {
	v, _, err := runStdin(t, "", "version")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^rwkvkit (v\S+|0\.1\.0-dev)\nmodule:   github.com/rwkvkit/rwkvkit\n(?s:.*)go:       go1\.`).MatchString(v) {
		t.Errorf("version:\n%s", v)
	}
	if flag, _, err := runStdin(t, "", "--version"); err != nil || flag != v {
		t.Errorf("--version %q (%v), version %q", flag, err, v)
	}
	if _, stderr, code := rwkvkit(t, "-v"); code != 2 || !strings.Contains(stderr, "unknown shorthand flag: 'v'") {
		t.Errorf("-v: exit %d, %q", code, stderr)
	}
}

// A misspelled flag gets the nearest real one as a suggestion.
func TestFlagSuggestions(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "m", "--prompt", "a", "--tempurature", "1"}, "(did you mean --temperature?)"},
		{[]string{"run", "m", "--promt", "a"}, "(did you mean --prompt?)"},
		{[]string{"quantize", "a", "b", "--nf", "all"}, "(did you mean --nf4?)"},
		{[]string{"verify", "m", "--max-kl=1", "--min-top"}, "(did you mean --min-top1?)"},
		{[]string{"merge", "a", "b", "--lora-patern", "x:1"}, "(did you mean --lora-pattern?)"},
	} {
		_, stderr, code := rwkvkit(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want %q", c.args, code, stderr, c.want)
		}
	}
	if _, stderr, _ := rwkvkit(t, "run", "m", "--zzzzzz"); strings.Contains(stderr, "did you mean") {
		t.Errorf("a suggestion for a flag far from any: %q", stderr)
	}
}

// Shell completion offers the values of --device.
func TestDeviceCompletion(t *testing.T) {
	for _, cmd := range []string{"quantize", "merge", "run", "logits", "verify", "demo"} {
		out, _, err := runStdin(t, "", "__complete", cmd, "--device", "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out, "auto\ncpu\ngpu\n:4\n") {
			t.Errorf("%s --device completes to %q", cmd, out)
		}
	}
}
