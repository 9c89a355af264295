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
//
// A lost device (reset by its driver, removed) is an error, not a crash:
// the first operation that meets the loss returns an error wrapping
// [ErrDeviceLost], and so does every later one, without calling into wgpu
// again (see guard.go for how wgpu-native's abort on a loss is caught).
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
	mappable      bool // download buffers may also be storage (see NewStorageDownload)

	upload   [2]*Staging // reused by Upload, in turn
	download *Staging    // reused by Download

	raw raw // the device's own references, for the guarded calls

	lostMu  sync.Mutex
	lostErr error                 // why the device cannot be used (see Err)
	maps    map[*Staging]struct{} // mappings requested and not yet completed
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
	if err := installGuard(); err != nil {
		return nil, err
	}
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
	limits := requestLimits(supported)
	var features []wgpu.FeatureName
	timestamps := adapter.HasFeature(wgpu.FeatureNameTimestampQuery)
	if timestamps {
		features = append(features, wgpu.FeatureNameTimestampQuery)
	}
	mappable := adapter.HasFeature(wgpu.NativeFeatureMappablePrimaryBuffers)
	if mappable {
		features = append(features, wgpu.NativeFeatureMappablePrimaryBuffers)
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
	d := &Device{instance: inst, adapter: adapter, dev: dev, queue: dev.GetQueue(), raw: takeRaw(dev), info: info, adapterLimits: supported}
	d.limits = dev.GetLimits().Limits
	d.timestamps, d.mappable = timestamps, mappable
	return d, nil
}

// Lock takes the device for one whole operation of its caller.
func (d *Device) Lock() { d.mu.Lock() }

// Unlock gives the device back.
func (d *Device) Unlock() { d.mu.Unlock() }

// Close releases the device, after the operation in progress (it takes
// the device's lock). Buffers and kernels made from it must not be used
// afterwards: their operations return an error wrapping [ErrDeviceLost].
// A lost device is not released at all (wgpu-native would abort in the
// attempt); its memory goes with the process.
func (d *Device) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dev == nil {
		return
	}
	if d.Err() == nil {
		for _, s := range []**Staging{&d.upload[0], &d.upload[1], &d.download} {
			if *s != nil {
				(*s).Release()
				*s = nil
			}
		}
		d.Wait()
		d.queue.Release()
		d.dev.Release()
		if d.releaseRaw() == nil {
			d.adapter.Release()
			d.instance.Release()
		}
	}
	d.setLost(closedError{})
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

// requestLimits are WebGPU's defaults raised to what the adapter supports for
// buffer size, storage binding size and workgroup memory, so that large
// tensors need few splits and tiled products get the workgroup memory the
// adapter has (32 KiB on lavapipe, 48 KiB on NVIDIA).
//
// wgpu-native reads a limit of all ones as "undefined" and gives WebGPU's
// default for it, and all ones is both what DefaultLimits holds and what an
// adapter without a buffer limit reports (NVIDIA's Vulkan driver does).
// Asking for either as is would give 256 MiB buffers and 16 KiB of workgroup
// memory, so each limit asked for is a defined value.
func requestLimits(supported wgpu.Limits) wgpu.Limits {
	l := wgpu.DefaultLimits()
	l.MaxBufferSize = defined64(supported.MaxBufferSize)
	l.MaxStorageBufferBindingSize = defined64(supported.MaxStorageBufferBindingSize)
	if w := supported.MaxComputeWorkgroupStorageSize; w != wgpu.LimitU32Undefined && w > 16<<10 {
		l.MaxComputeWorkgroupStorageSize = w
	}
	return l
}

// defined64 is v, or the largest defined value when v is the undefined marker.
func defined64(v uint64) uint64 { return min(v, wgpu.LimitU64Undefined-1) }

// WGPU returns the underlying device and queue, for what this package does
// not wrap. Work done through them bypasses the loss tracking: a
// submission or poll through the binding on a lost device aborts the
// process.
func (d *Device) WGPU() (*wgpu.Device, *wgpu.Queue) { return d.dev, d.queue }

// Wait blocks until all submitted work has finished and runs pending
// callbacks (buffer mappings). It returns the device's loss, if it was or
// is found lost.
func (d *Device) Wait() error { return d.pollUntil(func() bool { return false }) }

// pollUntil polls the device until done reports true or no submission is
// left, running the callbacks of the work that finishes. It never blocks
// inside wgpu: this wgpu's blocking poll gives up after 5 s and then takes
// the submission for finished, mapping buffers whose copies have not run
// and freeing what the work still uses (gfx-rs/wgpu#3601, #4589; fixed in
// wgpu 25), and a software adapter that compiles a pass's kernels at their
// first dispatch takes that long on a loaded CPU. It spins for the first
// 20 milliseconds, longer than a step of a 7B model takes on a real GPU
// (sleeping between polls from the first millisecond on cost 5–10% of such
// a step: a sleep lasts longer than asked), then sleeps between polls. It
// returns the device's loss, if it meets it.
func (d *Device) pollUntil(done func() bool) error {
	start := time.Now()
	for {
		empty, err := d.poll()
		if err != nil {
			return err
		}
		if empty || done() {
			return nil
		}
		if time.Since(start) < 20*time.Millisecond {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
}
