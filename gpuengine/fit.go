package gpuengine

import (
	"fmt"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
)

// deviceLimits are the limits a model's kernels are checked against: the
// device's (a variable so that tests can fake a smaller device).
var deviceLimits = (*gpu.Device).Limits

// A headKernel is a kernel whose workgroup is one head of one token or
// segment: lanes invocations per channel of the head, and workgroup memory
// of floats values per channel (its var<workgroup> declarations). The
// other kernels' workgroups fit what WebGPU guarantees every device (256
// invocations, 16 KiB).
type headKernel struct {
	file   string
	v7     bool // RWKV-7's; else v5's and v6's
	lanes  int
	floats int
}

var headKernels = []headKernel{
	{"timemix5.wgsl", false, 1, 5},
	{"timemix7.wgsl", true, 1, 8 + 4}, // and more to make the LoRA stages where the device has it (timeMixLoRA)
	{"prep7.wgsl", true, 1, 1},
	{"recur7.wgsl", true, 4, 6*8 + 2*8}, // r, w, k, a, b, v of BT = 8 tokens; two tokens' parts of the sums
	{"post7.wgsl", true, 1, 2},
}

// checkKernels refuses a model whose head kernels the device cannot run:
// a head size above the invocations a workgroup may have, or needing more
// workgroup memory than the device has.
func checkKernels(l wgpu.Limits, info format.ModelInfo) error {
	if info.Version == format.V4 {
		return nil
	}
	n := info.HeadSize
	threads := min(l.MaxComputeInvocationsPerWorkgroup, l.MaxComputeWorkgroupSizeX)
	for _, k := range headKernels {
		if k.v7 != (info.Version == format.V7) {
			continue
		}
		if uint64(k.lanes*n) > uint64(threads) {
			return fmt.Errorf("gpuengine: %w: head size %d needs %d invocations per workgroup in kernel %s, the device allows %d",
				ErrTooLarge, n, k.lanes*n, k.file, threads)
		}
		if need := 4 * k.floats * n; uint64(need) > uint64(l.MaxComputeWorkgroupStorageSize) {
			return fmt.Errorf("gpuengine: %w: head size %d needs %d bytes of workgroup memory in kernel %s, the device has %d",
				ErrTooLarge, n, need, k.file, l.MaxComputeWorkgroupStorageSize)
		}
	}
	return nil
}
