package gpuengine

import (
	"context"
	"errors"
	"path/filepath"
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
