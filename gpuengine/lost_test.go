package gpuengine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

// A device lost under a loaded model (a Vulkan layer makes the driver
// report VK_ERROR_DEVICE_LOST, as after a GPU reset) makes Run return an
// error wrapping gpu.ErrDeviceLost: the process neither aborts (as
// wgpu-native makes it) nor hangs. Every later call fails the same way
// without reaching wgpu, which reports the loss once; Close works.
func TestDeviceLost(t *testing.T) {
	if gputest.Losable() {
		loseUnderModel(t)
		return
	}
	gputest.RunLost(t)
}

func loseUnderModel(t *testing.T) {
	d, err := gpu.Open()
	if err != nil {
		t.Fatal(err)
	}
	src := openSource(t, filepath.Join(tinyDir, "st", "tiny-rwkv-7v0-834K.st"))
	e, err := Load(context.Background(), d, src, &Options{Chunk: 16})
	if err != nil {
		t.Fatal(err)
	}
	s := newState(t, e)
	gputest.Lose(t)
	run := func() error {
		return e.Run(context.Background(), []engine.Sequence{{Tokens: testTokens[:20], State: s, Output: engine.OutputLast}})
	}
	start := time.Now()
	first := run()
	t.Logf("Run on the lost device returned after %v: %v", time.Since(start), first)
	if !errors.Is(first, gpu.ErrDeviceLost) {
		t.Fatalf("Run on a lost device: %v, want an error wrapping gpu.ErrDeviceLost", first)
	}
	if err := run(); err == nil || err.Error() != first.Error() {
		t.Errorf("a second Run: %v, want %v", err, first)
	}
	if _, err := e.NewState(); !errors.Is(err, gpu.ErrDeviceLost) {
		t.Errorf("NewState on a lost device: %v", err)
	}
	if _, err := s.Snapshot(); !errors.Is(err, gpu.ErrDeviceLost) {
		t.Errorf("Snapshot on a lost device: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	d.Close()
}

// A model that the device's memory cannot hold (a Vulkan layer makes every
// allocation fail with VK_ERROR_OUT_OF_DEVICE_MEMORY, as on a full GPU) is
// refused at load with ErrTooLarge and the sizes, before anything is
// uploaded, and the device stays usable.
func TestOutOfMemory(t *testing.T) {
	if !gputest.Losable() {
		out, err := gputest.RunLosable(t, "120s")
		if err != nil {
			t.Fatalf("the process out of device memory failed (%v):\n%s", err, out)
		}
		return
	}
	d, err := gpu.Open()
	if err != nil {
		t.Fatal(err)
	}
	src := openSource(t, filepath.Join(tinyDir, "st", "tiny-rwkv-7v0-834K.st"))
	gputest.ExhaustMemory(t)
	_, err = Load(context.Background(), d, src, nil)
	t.Logf("%v", err)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("loading into a full device: %v, want ErrTooLarge with the sizes", err)
	}
	if d.Err() != nil {
		t.Errorf("a full device is taken for lost: %v", d.Err())
	}
	d.Close()
}
