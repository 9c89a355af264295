package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

// memoryTestModel is a synthetic RWKV-7 checkpoint of 365 MB whose largest
// tensor is 32 MB.
var memoryTestModel = synth.Config{Layers: 12, Embed: 1024, Vocab: 16384, HeadSize: 64, DecayLoRA: 64, ALoRA: 64, VLoRA: 32, GLoRA: 128}

// writePTH writes src as a .pth checkpoint at path.
func writePTH(t testing.TB, path string, src *format.Source) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.WritePTH(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Converting never holds the model in memory: the peak resident memory of
// the convert process stays within 2 × the largest tensor + 100 MB while the
// model is more than twice that bound.
func TestConvertMemoryFollowsLargestTensor(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 370 MB checkpoint")
	}
	src, dir, in := memoryTestPTH(t, format.BF16, 7)
	checkPeak(t, src, "convert", "convert", in, filepath.Join(dir, "out.st"))
}

// memoryTestPTH writes memoryTestModel, of type dt with random weights from
// seed, as in.pth in a new temporary folder.
func memoryTestPTH(t testing.TB, dt format.DType, seed uint64) (src *format.Source, dir, in string) {
	t.Helper()
	src, err := synth.RWKV7(memoryTestModel, dt, seed)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	in = filepath.Join(dir, "in.pth")
	writePTH(t, in, src)
	return src, dir, in
}

// checkPeak runs the command args (named name in the messages) on src and
// fails t if its peak resident memory exceeds memoryBound's.
func checkPeak(t *testing.T, src *format.Source, name string, args ...string) {
	t.Helper()
	largest, total, bound := memoryBound(t, src)
	peak := peakOf(t, args...)
	t.Logf("%s: model %d MB, largest tensor %d MB, peak RSS %d MB, bound %d MB", name, total>>20, largest>>20, peak>>20, bound>>20)
	if peak > bound {
		t.Errorf("%s: peak RSS %d MB exceeds 2 × largest tensor + 100 MB = %d MB", name, peak>>20, bound>>20)
	}
}

// memoryBound returns the largest tensor of src, its total size and the
// memory a command may take for it, 2 × the largest tensor + 100 MB, which
// must be well under the model's size for a test of it to tell anything.
func memoryBound(t testing.TB, src *format.Source) (largest, total, bound int64) {
	t.Helper()
	for _, tn := range src.Tensors {
		largest = max(largest, tn.Size())
		total += tn.Size()
	}
	bound = 2*largest + 100<<20
	if total < 2*bound {
		t.Fatalf("test model too small to tell: %d bytes vs bound %d", total, bound)
	}
	return largest, total, bound
}

// Interrupted halfway through by Ctrl-C (SIGINT), a kill (SIGTERM) or a
// closed terminal (SIGHUP), convert --force exits with status 2, says it
// was interrupted, leaves the
// file it was replacing as it was, and no temporary file. Killed outright
// (SIGKILL), it leaves the old file and its temporary file, which the next
// convert of the same output removes.
func TestConvertInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 370 MB checkpoint")
	}
	_, dir, in := memoryTestPTH(t, format.BF16, 8)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			outDir := filepath.Join(dir, sig.String())
			os.Mkdir(outDir, 0o755)
			out := filepath.Join(outDir, "model.st")
			if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "convert", in, out, "--force")
			cmd.Env = append(os.Environ(), "RWKVKIT_RUN_MAIN=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Signal once the temporary file has appeared and holds some data.
			deadline := time.Now().Add(30 * time.Second)
			for started := false; !started && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				entries, _ := os.ReadDir(outDir)
				for _, e := range entries {
					if fi, err := e.Info(); err == nil && fi.Size() > 1<<20 {
						started = true
					}
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if b, _ := os.ReadFile(out); string(b) != "old" {
				t.Errorf("convert stopped by %v: the old file holds %d bytes", sig, len(b))
			}
			left, _ := os.ReadDir(outDir)
			if sig == syscall.SIGKILL {
				if len(left) != 2 || !strings.HasPrefix(left[0].Name(), ".rwkvkit-") {
					t.Fatalf("convert killed left %v, want the old file and its temporary file", left)
				}
				if _, stderr, code := rwkvkit(t, "convert", in, out, "--force"); code != 0 {
					t.Fatalf("convert after a killed one: exit %d: %s", code, stderr)
				}
				if left, _ := os.ReadDir(outDir); len(left) != 1 {
					t.Errorf("after the next convert the folder holds %v", left)
				}
				return
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("convert stopped by %v: %v, want exit status 2", sig, err)
			}
			if !strings.HasPrefix(stderr.String(), "rwkvkit: interrupted: ") {
				t.Errorf("convert stopped by %v says %q", sig, stderr.String())
			}
			if len(left) != 1 || left[0].Name() != "model.st" {
				t.Errorf("convert stopped by %v left %v", sig, left)
			}
		})
	}
}

// verify and logits hold a chunk of positions' logits, not the text's:
// four times the tokens (32,000 bytes of text, 32 MB of logits a model)
// leave their peak resident memory where it was (holding every row, they
// grew by 95 MB and 46 MB).
func TestLogitsMemoryFollowsChunk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 80,000 tokens through the tiny model three times")
	}
	dir := t.TempDir()
	m := tiny + "tiny-rwkv-7v0-834K.pth"
	peaks := map[string][2]int64{}
	for i, n := range []int{8000, 32000} {
		text := filepath.Join(dir, "text.txt")
		if err := os.WriteFile(text, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", n/45+1)[:n]), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			args []string
		}{
			{"verify", []string{"verify", m, "--ref", m, "--device", "cpu", "--text-file", text}},
			{"logits", []string{"logits", m, "--device", "cpu", "--text-file", text, "--out", filepath.Join(dir, "out.f32"), "--force"}},
		} {
			p := peaks[c.name]
			p[i] = peakOf(t, c.args...)
			peaks[c.name] = p
		}
	}
	for name, p := range peaks {
		t.Logf("%s: peak RSS %d MB at 8,000 tokens, %d MB at 32,000", name, p[0]>>20, p[1]>>20)
		if p[1]-p[0] > 16<<20 {
			t.Errorf("%s: peak RSS grew by %d MB with 24,000 more tokens (24 MB of logits a model)", name, (p[1]-p[0])>>20)
		}
	}
}
