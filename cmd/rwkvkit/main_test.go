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

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
