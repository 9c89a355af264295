package gpu_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

// The statistics layer leaves a device's work as it is: a kernel under it
// computes what it does without, and the layer writes a line for the
// kernel's pipeline (the module's number, its entry point and workgroup
// size, the driver's statistics), or says that the driver keeps none
// (Mesa's lavapipe lists the extension but gives none of its functions).
func TestStatsLayer(t *testing.T) {
	if gputest.InStats() {
		d, err := gpu.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		dispatch2D(t, d)
		return
	}
	file := filepath.Join(t.TempDir(), "stats.txt")
	out, err := gputest.RunWithStats(t, "60s", file)
	if err != nil {
		t.Fatalf("the process under the statistics layer failed (%v):\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the layer wrote nothing: %v\n%s", err, out)
	}
	line := regexp.MustCompile(`(?m)^module \d+ main 4x1x1 \[[^]]*\]( \| [^|=]+=\S+)+$`)
	none := regexp.MustCompile(`(?m)^stats layer: the device (has no vkGetPipelineExecutableStatisticsKHR|refused)`)
	if !line.Match(b) && !none.Match(b) {
		t.Errorf("the layer wrote neither the kernel's statistics nor that the driver keeps none:\n%s", b)
	}
	t.Logf("%s\n%s", b, out)
}
