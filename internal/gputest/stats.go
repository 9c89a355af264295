package gputest

import (
	_ "embed"
	"os"
	"testing"
)

//go:embed testdata/statslayer.c
var statsLayer []byte

const (
	statsChildEnv  = "RWKVKIT_VKSTATS_CHILD" // set in the child process
	statsEnv       = "RWKVKIT_VKSTATS"       // the file the layer writes to
	statsLayerName = "VK_LAYER_RWKVKIT_stats"
)

// InStats reports whether this process is the child that RunWithStats
// starts, whose compute pipelines the statistics layer reports. (A process
// run under the layer by hand, with RWKVKIT_VKSTATS set, is not.)
func InStats() bool { return os.Getenv(statsChildEnv) != "" }

// RunWithStats runs the test t again (by name, a top-level test) in a child
// process under a Vulkan layer that writes to file, for every compute
// pipeline the child makes, what the driver compiled it into (registers,
// instructions, spills, workgroup memory, as the driver names them; see
// testdata/statslayer.c), and returns the child's output and how it ended.
func RunWithStats(t *testing.T, timeout, file string) (string, error) {
	t.Helper()
	Device(t)
	dir := t.TempDir()
	buildLayer(t, dir, statsLayerName, "statslayer", statsLayer, "reports what the driver compiled each compute pipeline into")
	return runChild(t, timeout, dir, statsLayerName, statsChildEnv+"=1", statsEnv+"="+file)
}
