package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runStdin executes the command in-process with stdin, returning stdout
// and stderr apart.
func runStdin(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// Sampling values, verify's thresholds, layer specs outside their range (or
// syntax) and a --state file that is not there are refused before anything
// is loaded, with the range in the message (the models named do not exist).
func TestFlagValuesChecked(t *testing.T) {
	run := []string{"run", "no-such-model.pth", "--prompt", "a"}
	verify := []string{"verify", "no-such-model.st", "--ref", "no-such-ref.st"}
	quantize := []string{"quantize", "no-such-model.pth", filepath.Join(t.TempDir(), "out.rkv")}
	for _, c := range []struct {
		cmd               []string
		flag, value, want string
	}{
		{run, "--temperature", "-1", "--temperature -1: want a finite value of 0"},
		{run, "--temperature", "nan", "--temperature NaN: want a finite value of 0"},
		{run, "--temperature", "inf", "--temperature +Inf"},
		{run, "--top-p", "0", "--top-p 0: want a value in (0, 1]"},
		{run, "--top-p", "-1", "--top-p -1: want a value in (0, 1]"},
		{run, "--top-p", "1.5", "--top-p 1.5: want a value in (0, 1]"},
		{run, "--seed", "-2", "want an integer from 0 to 18446744073709551615, or -1"},
		{run, "--seed", "x", "want an integer from 0"},
		{verify, "--max-kl", "-1", "--max-kl -1: want 0 or more"},
		{verify, "--max-kl", "nan", "--max-kl NaN: want 0 or more"},
		{verify, "--min-top1", "150", "--min-top1 150: want 0 to 100 (percent)"},
		{verify, "--min-top1", "-0.5", "--min-top1 -0.5: want 0 to 100"},
		{verify, "--max-dlogit", "-1e-3", "--max-dlogit -0.001: want 0 or more"},
		{quantize, "--int8", "", `invalid argument "" for "--int8" flag: layer spec is empty`},
		{quantize, "--nf4", "5-2", `range "5-2" runs backwards`},
		{verify, "--sf4", "1,x", `"x" is not a layer`},
		{run, "--state", "absent-state.rkv", "--state: open absent-state.rkv: no such file"},
		{verify, "--state", "absent-state.rkv", "--state: open absent-state.rkv: no such file"},
	} {
		_, stderr, code := rwkvkit(t, append(c.cmd, c.flag, c.value)...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "no-such") {
			t.Errorf("%s %s %s: exit %d, %q; want 2 and %q", c.cmd[0], c.flag, c.value, code, stderr, c.want)
		}
	}
	if _, stderr, code := rwkvkit(t, "run", tiny+"tiny-rwkv-7v0-834K.pth", "--prompt", "a", "-n", "2", "--temperature", "0", "--top-p", "1"); code != 0 {
		t.Errorf("temperature 0 (greedy) and top-p 1: exit %d, %s", code, stderr)
	}
}

var seedLine = regexp.MustCompile(`(?m)^seed: (\d+)$`)

// Without --seed (or with -1) the seed is random and printed on stderr, and
// giving it again repeats the text.
func TestRandomSeed(t *testing.T) {
	model := tiny + "tiny-rwkv-7v0-834K.pth"
	texts := map[string]bool{}
	for _, extra := range [][]string{nil, {"--seed", "-1"}, nil} {
		args := append([]string{"run", model, "--prompt", "The ", "-n", "40"}, extra...)
		stdout, stderr, err := runStdin(t, "", args...)
		if err != nil {
			t.Fatal(err)
		}
		m := seedLine.FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("%v: no seed on stderr: %q", extra, stderr)
		}
		again, _, err := runStdin(t, "", "run", model, "--prompt", "The ", "-n", "40", "--seed", m[1])
		if err != nil {
			t.Fatal(err)
		}
		if again != stdout {
			t.Errorf("--seed %s wrote %q, the run that printed it %q", m[1], again, stdout)
		}
		texts[stdout] = true
	}
	if len(texts) < 2 {
		t.Error("three runs with random seeds wrote the same 40 bytes")
	}
	_, stderr, _ := runStdin(t, "", "run", model, "--prompt", "The ", "-n", "4", "--seed", "5")
	if seedLine.MatchString(stderr) {
		t.Errorf("a given seed is printed: %q", stderr)
	}
}

// --prompt-file reads a file, or stdin for -, with its newlines as they
// are; the text is the same as from --prompt.
func TestPromptFile(t *testing.T) {
	model := tiny + "tiny-rwkv-7v0-834K.pth"
	prompt := "User: hi\n\nAssistant:"
	file := filepath.Join(t.TempDir(), "prompt.txt")
	if err := os.WriteFile(file, []byte(prompt), 0o644); err != nil {
		t.Fatal(err)
	}
	want, _, err := runStdin(t, "", "run", model, "--prompt", prompt, "-n", "24", "--seed", "1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ stdin, file string }{{"", file}, {prompt, "-"}} {
		got, stderr, err := runStdin(t, c.stdin, "run", model, "--prompt-file", c.file, "-n", "24", "--seed", "1")
		if err != nil || got != want || !strings.Contains(stderr, "prompt: 20 tokens") {
			t.Errorf("--prompt-file %s: %q, %q, %v; --prompt gave %q", c.file, got, stderr, err, want)
		}
	}
	if _, _, err := runStdin(t, "", "run", model, "--prompt", "a", "--prompt-file", file); err == nil {
		t.Error("--prompt and --prompt-file together were accepted")
	}
	if _, _, err := runStdin(t, "", "run", model); err == nil {
		t.Error("no prompt was accepted")
	}
}

// run reports prompt and generation speed at the end, on stderr.
func TestRunStats(t *testing.T) {
	stdout, stderr, err := runStdin(t, "", "run", tiny+"tiny-rwkv-7v0-834K.pth", "--prompt", "The ", "-n", "10", "--seed", "2")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`prompt: 4 tokens in [0-9.]+ s \([0-9.]+ tokens/s\); generated: 10 tokens in [0-9.]+ s \([0-9.]+ tokens/s\)`)
	if !re.MatchString(stderr) || strings.Contains(stdout, "tokens/s") {
		t.Errorf("stderr %q, stdout %q; want the statistics on stderr only", stderr, stdout)
	}
}

// runStdout executes the command in-process and returns its stdout only.
func runStdout(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := runStdin(t, "", args...)
	return out, err
}

func TestRunIsReproducible(t *testing.T) {
	m := tiny + "tiny-rwkv-7v0-834K.pth"
	a, _, err := runStdin(t, "", "run", m, "--prompt", "The ", "-n", "40", "--seed", "7")
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := runStdin(t, "", "run", m, "--prompt", "The ", "-n", "40", "--seed", "7")
	c, _, _ := runStdin(t, "", "run", m, "--prompt", "The ", "-n", "40", "--seed", "8")
	if a != b || a == c || len(a) < 40 {
		t.Errorf("seeded runs: %q, %q, %q", a, b, c)
	}
	// Greedy decoding takes the argmax of the reference logits after "in.
	ref := floats(t, tiny+"tiny-rwkv-7v0-834K.quote_in.logits.f32")[2*256:]
	best := 0
	for i, v := range ref {
		if v > ref[best] {
			best = i
		}
	}
	greedy, _, err := runStdin(t, "", "run", m, "--prompt", "\"in", "-n", "1", "--temperature", "0", "--device", "cpu")
	if err != nil || greedy != string(rune(best))+"\n" {
		t.Errorf("greedy token %q (%v), want byte %d", greedy, err, best)
	}
}
