// Package gpu is a small WebGPU compute layer over cogentcore/webgpu: it
// opens a Vulkan device, creates storage buffers and compute kernels from
// WGSL, dispatches grids larger than one dimension allows, splits data into
// bindings no bigger than the device accepts, and moves bytes through
// reusable mapped staging buffers. It knows nothing about models.
//
// Only the Vulkan backend is used. With no Vulkan driver at all, wgpu's
// default instance aborts the process; a Vulkan-only instance reports that
// no adapter exists, which [Open] returns as [ErrNoAdapter].
//
// WGSL conventions: float16 data travels as array<u32> (two values per word),
// because f16 in WGSL does not compile with the bundled shader compiler. A
// kernel dispatched with [Dispatch] finds its linear workgroup index as
// wid.x + wid.y * nwg.x (see [Grid]).
//
// A Device and the objects made from it are not safe for concurrent use;
// callers serialise their calls.
package gpu

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cogentcore/webgpu/wgpu"
)

// ErrNoAdapter is returned by Open when no Vulkan adapter answers.
var ErrNoAdapter = errors.New("gpu: no Vulkan adapter found (install the GPU's Vulkan driver and the loader libvulkan1; " +
	"on a machine without a GPU, Mesa's lavapipe (mesa-vulkan-drivers) provides one; " +
	"with the NVIDIA driver, point VK_DRIVER_FILES at its ICD json)")

// Info describes the adapter behind a Device.
type Info struct {
	Name    string // "NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)"
	Vendor  string
	Driver  string
	Backend string // "vulkan"
	Type    string // "discrete-gpu", "integrated-gpu", "cpu", "unknown"
}

func (i Info) String() string {
	return fmt.Sprintf("%s (%s, %s)", i.Name, i.Backend, i.Type)
}

// Device is an open WebGPU device with its queue. Its methods are for one
// goroutine at a time; code that shares a Device across goroutines holds
// Lock around each whole operation (uploads, dispatches, downloads), since
// one goroutine's Poll runs the map callbacks of another's buffers.
type Device struct {
	mu sync.Mutex

	instance *wgpu.Instance
	adapter  *wgpu.Adapter
	dev      *wgpu.Device
	queue    *wgpu.Queue
	info     Info
	limits   wgpu.Limits

	adapterLimits wgpu.Limits
	timestamps    bool

	upload, download *Staging // reused by Upload and Download
}

// Open opens the first high-performance Vulkan adapter (a discrete GPU
// before an integrated one, a software adapter only when there is nothing
// else; see [Info.Software]). It requests the WebGPU default limits, raised
// to the adapter's maximum buffer size, storage binding size and workgroup
// memory so that large tensors need few splits.
func Open() (*Device, error) {
	// wgpu-native warns about missing presentation extensions that compute
	// does not use; errors are still printed.
	wgpu.SetLogLevel(wgpu.LogLevelError)
	quietLoader()
	inst := wgpu.CreateInstance(&wgpu.InstanceDescriptor{Backends: wgpu.InstanceBackendVulkan})
	adapter, err := inst.RequestAdapter(&wgpu.RequestAdapterOptions{PowerPreference: wgpu.PowerPreferenceHighPerformance})
	if err != nil || adapter == nil {
		inst.Release()
		return nil, ErrNoAdapter
	}
	ai := adapter.GetInfo()
	info := Info{
		Name:    ai.Name,
		Vendor:  ai.VendorName,
		Driver:  ai.DriverDescription,
		Backend: ai.BackendType.String(),
		Type:    ai.AdapterType.String(),
	}
	// Some drivers (lavapipe) report a numeric placeholder as the name and
	// the useful one as the driver description.
	if info.Name == "" || strings.HasPrefix(info.Name, "0x") {
		info.Name = info.Driver
	}
	if info.Name == "" {
		info.Name = "unnamed adapter"
	}
	supported := adapter.GetLimits().Limits
	limits := wgpu.DefaultLimits()
	limits.MaxBufferSize = supported.MaxBufferSize
	limits.MaxStorageBufferBindingSize = supported.MaxStorageBufferBindingSize
	// Tiled matrix products want more workgroup memory than WebGPU's default
	// 16 KiB where the adapter has it (32 KiB on lavapipe, 48 KiB on NVIDIA).
	limits.MaxComputeWorkgroupStorageSize = max(limits.MaxComputeWorkgroupStorageSize, supported.MaxComputeWorkgroupStorageSize)
	var features []wgpu.FeatureName
	if adapter.HasFeature(wgpu.FeatureNameTimestampQuery) {
		features = append(features, wgpu.FeatureNameTimestampQuery)
	}
	dev, err := adapter.RequestDevice(&wgpu.DeviceDescriptor{
		Label:            "rwkvkit",
		RequiredLimits:   &wgpu.RequiredLimits{Limits: limits},
		RequiredFeatures: features,
	})
	if err != nil {
		adapter.Release()
		inst.Release()
		return nil, fmt.Errorf("gpu: %s: %w", info, err)
	}
	d := &Device{instance: inst, adapter: adapter, dev: dev, queue: dev.GetQueue(), info: info, adapterLimits: supported}
	d.limits = dev.GetLimits().Limits
	d.timestamps = len(features) > 0
	return d, nil
}

// Lock takes the device for one whole operation of its caller.
func (d *Device) Lock() { d.mu.Lock() }

// Unlock gives the device back.
func (d *Device) Unlock() { d.mu.Unlock() }

// Close releases the device. Buffers and kernels made from it must not be
// used afterwards.
func (d *Device) Close() {
	if d.dev == nil {
		return
	}
	for _, s := range []**Staging{&d.upload, &d.download} {
		if *s != nil {
			(*s).Release()
			*s = nil
		}
	}
	d.Wait()
	d.queue.Release()
	d.dev.Release()
	d.adapter.Release()
	d.instance.Release()
	d.dev = nil
}

// Info describes the adapter.
func (d *Device) Info() Info { return d.info }

// Limits are the limits the device was created with.
func (d *Device) Limits() wgpu.Limits { return d.limits }

// AdapterLimits are the limits the adapter reported it supports.
func (d *Device) AdapterLimits() wgpu.Limits { return d.adapterLimits }

// MaxBinding is the largest byte size one storage binding may have, rounded
// down to a multiple of 256 so that chunk offsets stay aligned.
func (d *Device) MaxBinding() uint64 {
	return min(d.limits.MaxStorageBufferBindingSize, d.limits.MaxBufferSize) &^ 255
}

// WGPU returns the underlying device and queue, for what this package does
// not wrap.
func (d *Device) WGPU() (*wgpu.Device, *wgpu.Queue) { return d.dev, d.queue }

// Wait blocks until all submitted work has finished and runs pending
// callbacks (buffer mappings).
func (d *Device) Wait() { d.pollUntil(func() bool { return false }) }

// pollUntil polls the device until done reports true or no submission is
// left, running the callbacks of the work that finishes. It never blocks
// inside wgpu: this wgpu's blocking poll gives up after 5 s and then takes
// the submission for finished, mapping buffers whose copies have not run
// and freeing what the work still uses (gfx-rs/wgpu#3601, #4589; fixed in
// wgpu 25), and a software adapter that compiles a pass's kernels at their
// first dispatch takes that long on a loaded CPU. It spins for the first
// 20 milliseconds, longer than a step of a 7B model takes on a real GPU
// (sleeping between polls from the first millisecond on cost 5–10% of such
// a step: a sleep lasts longer than asked), then sleeps between polls.
func (d *Device) pollUntil(done func() bool) {
	start := time.Now()
	for !d.dev.Poll(false, nil) && !done() {
		if time.Since(start) < 20*time.Millisecond {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
}
