package gputest

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

//go:embed testdata/loselayer.c
var loseLayer []byte

const (
	childEnv  = "RWKVKIT_LOSABLE_CHILD" // set in the child process
	loseEnv   = "RWKVKIT_LOSE_FILE"     // the file whose existence loses the device
	oomEnv    = "RWKVKIT_OOM_FILE"      // the file whose existence exhausts device memory
	layerName = "VK_LAYER_RWKVKIT_lose_device"
)

// Losable reports whether this process is the child that RunLosable
// starts: a process whose Vulkan devices (opened with gpu.Open, not the
// shared Device) can be lost with Lose.
func Losable() bool { return os.Getenv(childEnv) != "" }

// Lose makes every Vulkan device of a Losable process lost from now on: the
// calls through which Vulkan reports a lost device (queue submissions,
// fence and semaphore waits) return VK_ERROR_DEVICE_LOST, as after a GPU
// reset.
func Lose(t testing.TB) { t.Helper(); trigger(t, loseEnv) }

// ExhaustMemory makes every device memory allocation of a Losable process
// fail from now on with VK_ERROR_OUT_OF_DEVICE_MEMORY, as on a full GPU.
func ExhaustMemory(t testing.TB) { t.Helper(); trigger(t, oomEnv) }

// trigger creates the file that the layer watches for, named by env.
func trigger(t testing.TB, env string) {
	t.Helper()
	if !Losable() {
		t.Fatal("the device-losing layer is only in a losable child process")
	}
	if err := os.WriteFile(os.Getenv(env), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// RunLosable runs the test t again (by name, a top-level test) in a child
// process of the test binary in which a Vulkan layer can lose the device
// on demand (Losable is true there), and returns the child's output and
// how it ended. A process that aborts is seen this way from outside, as a
// user sees it. Without an adapter it skips or fails as Device does; the
// layer is compiled with the C compiler that cgo uses.
func RunLosable(t *testing.T, timeout string) (string, error) {
	t.Helper()
	Device(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "loselayer.c")
	if err := os.WriteFile(src, loseLayer, 0o644); err != nil {
		t.Fatal(err)
	}
	cc := strings.Fields(os.Getenv("CC"))
	if len(cc) == 0 {
		cc = []string{"cc"}
	}
	args := append(cc[1:], "-shared", "-fPIC", "-O1", "-fvisibility=hidden", "-o", filepath.Join(dir, "liblose.so"), src)
	if out, err := exec.Command(cc[0], args...).CombinedOutput(); err != nil {
		t.Fatalf("compiling the device-losing Vulkan layer: %v\n%s", err, out)
	}
	manifest := `{"file_format_version": "1.0.0", "layer": {"name": "` + layerName + `", "type": "GLOBAL",
"library_path": "./liblose.so", "api_version": "1.3.0", "implementation_version": "1",
"description": "loses the device once a file exists"}}`
	if err := os.WriteFile(filepath.Join(dir, "lose.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.timeout="+timeout)
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		loseEnv+"="+filepath.Join(dir, "lost"),
		oomEnv+"="+filepath.Join(dir, "oom"),
		"VK_LAYER_PATH="+dir,
		"VK_INSTANCE_LAYERS="+layerName,
		"RUST_BACKTRACE=0",
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// RunLost runs t in a losable child (RunLosable) that loses its device, and
// fails t unless the child passed and wgpu reported the loss exactly once:
// the operations after the first one that met the loss must not reach
// wgpu.
func RunLost(t *testing.T) {
	t.Helper()
	out, err := RunLosable(t, "120s")
	if err != nil {
		t.Fatalf("the process losing its device failed (%v):\n%s", err, out)
	}
	if n := strings.Count(out, "Parent device is lost"); n != 1 {
		t.Errorf("wgpu reported the loss %d times, want once (the calls after it must not reach wgpu):\n%s", n, out)
	}
}
