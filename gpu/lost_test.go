package gpu_test

import (
	"errors"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

// A device lost while a download waits for its copy (a Vulkan layer makes
// the driver report VK_ERROR_DEVICE_LOST, as after a GPU reset) is an error
// of that download, not the abort wgpu-native makes of it, and every later
// operation returns the same error without calling into wgpu again: wgpu
// reports the loss once. The collector, paused while the mapping was
// pending, runs again.
func TestDeviceLost(t *testing.T) {
	if gputest.Losable() {
		loseDevice(t)
		return
	}
	gputest.RunLost(t)
}

func loseDevice(t *testing.T) {
	d, err := gpu.Open()
	if err != nil {
		t.Fatal(err)
	}
	src, err := d.Storage("src", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Upload(src, 0, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	down, err := d.NewDownload(4096)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Submit(func(enc *wgpu.CommandEncoder) error { return enc.CopyBufferToBuffer(src, 0, down.Buffer(), 0, 4096) })
	if err != nil {
		t.Fatal(err)
	}
	if err := down.Map(); err != nil {
		t.Fatal(err)
	}
	if d.Err() != nil {
		t.Fatalf("Err before the loss: %v", d.Err())
	}
	gputest.Lose(t)
	if _, err := down.Bytes(); !errors.Is(err, gpu.ErrDeviceLost) {
		t.Fatalf("reading back on a lost device: %v, want ErrDeviceLost", err)
	}
	first := d.Err()
	t.Logf("lost: %v", first)
	if !errors.Is(first, gpu.ErrDeviceLost) {
		t.Fatalf("Err = %v after the loss", first)
	}
	if p := debug.SetGCPercent(100); p < 0 {
		t.Errorf("the collector is still paused after the loss (GC percent %d)", p)
	} else {
		debug.SetGCPercent(p)
	}
	_, errBuf := d.Storage("more", 64)
	_, errKernel := d.NewKernel("k", "@compute @workgroup_size(1) fn main() {}", "main")
	got := make([]byte, 4096)
	for _, c := range []struct {
		op  string
		err error
	}{
		{"Submit", d.Submit(func(enc *wgpu.CommandEncoder) error { return enc.ClearBuffer(src, 0, 4096) })},
		{"Wait", d.Wait()},
		{"Upload", d.Upload(src, 0, got)},
		{"Write", d.Write(src, 0, got[:16])},
		{"Download", d.Download(got, src, 0)},
		{"Storage", errBuf},
		{"NewKernel", errKernel},
		{"Map", down.Map()},
	} {
		if c.err != first {
			t.Errorf("%s after the loss: %v, want %v", c.op, c.err, first)
		}
	}
	down.Release()
	d.Close()
	if d.Err() != first {
		t.Errorf("after Close, Err = %v, want the loss", d.Err())
	}
}

// A closed device's operations return an error wrapping ErrDeviceLost.
func TestClosed(t *testing.T) {
	gputest.Device(t)
	d, err := gpu.Open()
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Storage("b", 16)
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	d.Close()
	d.Close()
	if _, err := d.Storage("b", 16); !errors.Is(err, gpu.ErrDeviceLost) || !strings.Contains(err.Error(), "closed") {
		t.Errorf("a buffer of a closed device: %v, want a closed device's error", err)
	}
	if err := d.Submit(func(*wgpu.CommandEncoder) error { return nil }); !errors.Is(err, gpu.ErrDeviceLost) {
		t.Errorf("submitting to a closed device: %v", err)
	}
}

// An abort outside the guarded calls still ends the process as Go's own
// handler ends it: the guard takes only the aborts inside wgpu calls.
func TestAbortElsewhere(t *testing.T) {
	if gputest.Losable() {
		if _, err := gpu.Open(); err != nil {
			t.Fatal(err)
		}
		syscall.Kill(os.Getpid(), syscall.SIGABRT)
		time.Sleep(10 * time.Second)
		t.Fatal("SIGABRT did not end the process")
	}
	out, err := gputest.RunLosable(t, "60s")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out, "SIGABRT: abort") {
		t.Fatalf("the process sent SIGABRT ended with %v, want Go's exit status 2 and its report:\n%s", err, out)
	}
}
