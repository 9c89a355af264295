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

//go:embed testdata/layer.h
var layerHeader []byte

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
	buildLayer(t, dir, layerName, "loselayer", loseLayer, "loses the device once a file exists")
	return runChild(t, timeout, dir, layerName,
		childEnv+"=1",
		loseEnv+"="+filepath.Join(dir, "lost"),
		oomEnv+"="+filepath.Join(dir, "oom"),
		"RUST_BACKTRACE=0",
	)
}

// buildLayer compiles the Vulkan layer source src (with testdata/layer.h)
// with the C compiler that cgo uses (extra flags from CC) into dir, beside
// its manifest, as name.
func buildLayer(t *testing.T, dir, name, file string, src []byte, desc string) {
	t.Helper()
	path := filepath.Join(dir, file+".c")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "layer.h"), layerHeader, 0o644); err != nil {
		t.Fatal(err)
	}
	cc := strings.Fields(os.Getenv("CC"))
	if len(cc) == 0 {
		cc = []string{"cc"}
	}
	args := append(cc[1:], "-shared", "-fPIC", "-O1", "-fvisibility=hidden", "-o", filepath.Join(dir, "lib"+file+".so"), path)
	if out, err := exec.Command(cc[0], args...).CombinedOutput(); err != nil {
		t.Fatalf("compiling the Vulkan layer %s: %v\n%s", file, err, out)
	}
	manifest := `{"file_format_version": "1.0.0", "layer": {"name": "` + name + `", "type": "GLOBAL",
"library_path": "./lib` + file + `.so", "api_version": "1.3.0", "implementation_version": "1",
"description": "` + desc + `"}}`
	if err := os.WriteFile(filepath.Join(dir, file+".json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runChild runs the top-level test t again in a child process of the test
// binary with the layer of dir enabled and env added.
func runChild(t *testing.T, timeout, dir, layer string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.timeout="+timeout)
	cmd.Env = append(os.Environ(), "VK_LAYER_PATH="+dir, "VK_INSTANCE_LAYERS="+layer)
	cmd.Env = append(cmd.Env, env...)
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
