package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const tiny = "../../fixtures/rwkv-tiny/"

var tinyModels = []string{
	"tiny-rwkv-4v0-660K",
	"tiny-rwkv-5v1-730K",
	"tiny-rwkv-5v2-730K",
	"tiny-rwkv-6v0-1m",
	"tiny-rwkv-7v0-834K",
}

// TestMain lets a test run the real binary entry point (for exit statuses)
// by re-executing the test binary with RWKVKIT_RUN_MAIN set.
func TestMain(m *testing.M) {
	if os.Getenv("RWKVKIT_RUN_MAIN") == "1" {
		main()
		if f := os.Getenv("RWKVKIT_PEAK_FILE"); f != "" {
			writePeak(f)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// rwkvkit runs the command in a child process and returns its stdout,
// stderr and exit status.
func rwkvkit(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RWKVKIT_RUN_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// writePeak records the process's peak resident memory (VmHWM) in path.
// The child's rusage cannot be used: ru_maxrss keeps the high-water mark of
// the test process it was forked from.
func writePeak(path string) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			os.WriteFile(path, []byte(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))), 0o644)
		}
	}
}

// peakOf runs the command in a child process and returns its peak resident
// memory in bytes.
func peakOf(t testing.TB, args ...string) int64 {
	t.Helper()
	f := filepath.Join(t.TempDir(), "peak")
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RWKVKIT_RUN_MAIN=1", "RWKVKIT_PEAK_FILE="+f)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatalf("no peak memory reported: %v", err)
	}
	kb, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return kb << 10
}

// run executes the command in-process.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

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

func TestInspect(t *testing.T) {
	out, err := run(t, "inspect", tiny+"tiny-rwkv-6v0-1m.pth")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind:       pth", "v6", "heads:      8 × 8", "vocabulary: 256", "FFN:        224", "mix 32, decay 64", "blocks.0.att.time_maa_w1"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	js, err := run(t, "inspect", "--json", tiny+"st/tiny-rwkv-7v0-834K.st")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind": "safetensors"`, `"version": "7"`, `"layout": "web-rwkv"`, `"head_size": 64`} {
		if !strings.Contains(js, want) {
			t.Errorf("inspect --json lacks %q", want)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
