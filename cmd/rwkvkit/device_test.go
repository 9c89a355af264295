package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

// --device auto never quantizes on software Vulkan (lavapipe): with only
// such an adapter it says so and uses the CPU. A GPU run prints nothing of
// the Vulkan loader's, even with XDG_RUNTIME_DIR unset.
func TestDeviceAuto(t *testing.T) {
	info := gputest.Device(t).Info() // skips, or fails under RWKVKIT_REQUIRE_GPU, without a GPU
	out := filepath.Join(t.TempDir(), "q.rkv")
	for _, dev := range []string{"auto", "gpu"} {
		cmd := exec.Command(os.Args[0], "quantize", tiny+"tiny-rwkv-7v0-834K.pth", out, "--int8", "all", "--device", dev, "--force")
		cmd.Env = append(withoutEnv("XDG_RUNTIME_DIR"), "RWKVKIT_RUN_MAIN=1")
		b, err := cmd.CombinedOutput()
		stderr := string(b)
		if err != nil {
			t.Fatalf("--device %s: %v\n%s", dev, err, stderr)
		}
		if strings.Contains(stderr, "XDG_RUNTIME_DIR") {
			t.Errorf("--device %s: loader noise: %q", dev, stderr)
		}
		onCPU := strings.Contains(stderr, "device: CPU")
		if want := dev == "auto" && info.Software(); onCPU != want {
			t.Errorf("--device %s with %s: %q", dev, info, stderr)
		}
	}
}

func withoutEnv(name string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			env = append(env, kv)
		}
	}
	return env
}
