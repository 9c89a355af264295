package gpu

/*
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// The wgpu-native entry points called here are the ones the webgpu binding
// links. They are declared weak so that this package's own cgo link check
// passes without the library; in a program they bind to the binding's copy.
extern void wgpuQueueSubmit(void *queue, size_t count, void *const *commands) __attribute__((weak));
extern uint32_t wgpuDevicePoll(void *device, uint32_t wait, const void *index) __attribute__((weak));
extern void *wgpuDeviceGetQueue(void *device) __attribute__((weak));
extern void wgpuDeviceReference(void *device) __attribute__((weak));
extern void wgpuDeviceRelease(void *device) __attribute__((weak));
extern void wgpuQueueRelease(void *queue) __attribute__((weak));

// rk_jump is where an abort inside a guarded call on this thread returns to.
static __thread sigjmp_buf *rk_jump;
static struct sigaction rk_prev;

static void rk_on_abort(int sig, siginfo_t *info, void *uc) {
	sigjmp_buf *j = rk_jump;
	if (j != NULL) {
		rk_jump = NULL;
		siglongjmp(*j, 1);
	}
	if (rk_prev.sa_flags & SA_SIGINFO) {
		rk_prev.sa_sigaction(sig, info, uc);
	} else if (rk_prev.sa_handler == SIG_DFL) {
		signal(sig, SIG_DFL);
		raise(sig);
	} else if (rk_prev.sa_handler != SIG_IGN) {
		rk_prev.sa_handler(sig);
	}
}

static int rk_install(void) {
	if (!wgpuQueueSubmit || !wgpuDevicePoll || !wgpuDeviceGetQueue || !wgpuDeviceReference || !wgpuDeviceRelease || !wgpuQueueRelease) {
		return -2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = rk_on_abort;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	return sigaction(SIGABRT, &sa, &rk_prev);
}

// Each guarded call returns -1 when wgpu-native aborted inside it.

static int rk_submit(void *queue, void *command) {
	sigjmp_buf j;
	if (sigsetjmp(j, 1) != 0) {
		return -1;
	}
	rk_jump = &j;
	wgpuQueueSubmit(queue, 1, &command);
	rk_jump = NULL;
	return 0;
}

// rk_poll returns 1 when no submission is left, 0 when some still run.
static int rk_poll(void *device) {
	sigjmp_buf j;
	if (sigsetjmp(j, 1) != 0) {
		return -1;
	}
	rk_jump = &j;
	int empty = wgpuDevicePoll(device, 0, NULL) != 0;
	rk_jump = NULL;
	return empty;
}

static void *rk_take(void *device) {
	wgpuDeviceReference(device);
	return wgpuDeviceGetQueue(device);
}

static int rk_release(void *device, void *queue) {
	sigjmp_buf j;
	if (sigsetjmp(j, 1) != 0) {
		return -1;
	}
	rk_jump = &j;
	wgpuQueueRelease(queue);
	wgpuDeviceRelease(device);
	rk_jump = NULL;
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/cogentcore/webgpu/wgpu"
)

// wgpu-native (v0.19.4.1, the one the binding links) reports every error
// of a submission and of a poll, a lost device among them ("Parent device
// is lost"), by a Rust panic inside the C call. The panic cannot unwind
// through the Go frames above it, so the Rust runtime calls abort(): the
// process dies with SIGABRT. The guarded calls above catch that abort on
// their own thread (a SIGABRT handler that jumps back into the call's C
// frame when the thread is inside one, and hands every other SIGABRT to
// the handler it replaced, Go's), so that the loss becomes an error.
// glibc's and musl's abort raise SIGABRT before taking any lock of their
// own, so leaving the handler by siglongjmp leaves nothing held. What
// wgpu-native was doing when it panicked is abandoned, locks and memory
// included, so nothing of that device is called again: the Device records
// the loss and every later operation returns it. The thread keeps Rust's
// count of panics in progress, which makes wgpu-native skip the cleanup of
// objects released on it later (a leak, not a fault).
var (
	guardOnce sync.Once
	guardErr  error
)

func installGuard() error {
	guardOnce.Do(func() {
		switch C.rk_install() {
		case 0:
		case -2:
			guardErr = errors.New("gpu: the wgpu-native entry points are missing from the program")
		default:
			guardErr = errors.New("gpu: installing the SIGABRT handler failed")
		}
	})
	return guardErr
}

// The binding keeps each object's wgpu-native pointer in an unexported
// field; a Device and a CommandBuffer hold that pointer and nothing else
// (checked here at compile time: a different size makes an index out of
// range).
var (
	_ = [1]struct{}{}[unsafe.Sizeof(wgpu.Device{})-unsafe.Sizeof(uintptr(0))]
	_ = [1]struct{}{}[unsafe.Sizeof(wgpu.CommandBuffer{})-unsafe.Sizeof(uintptr(0))]
)

func deviceRef(d *wgpu.Device) unsafe.Pointer         { return *(*unsafe.Pointer)(unsafe.Pointer(d)) }
func commandRef(c *wgpu.CommandBuffer) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(c)) }

// raw are the device's own references to the wgpu-native device and queue,
// which the guarded calls use. Holding one keeps the device alive until
// release, so that wgpu-native's last release of it, which polls it, is a
// guarded one.
type raw struct{ dev, queue unsafe.Pointer }

func takeRaw(dev *wgpu.Device) raw {
	p := deviceRef(dev)
	return raw{dev: p, queue: C.rk_take(p)}
}

// submit submits cmd.
func (d *Device) submit(cmd *wgpu.CommandBuffer) error {
	if C.rk_submit(d.raw.queue, commandRef(cmd)) < 0 {
		return d.lose("wgpu-native stopped inside wgpuQueueSubmit")
	}
	return nil
}

// poll runs the callbacks of finished work and reports whether no
// submission is left.
func (d *Device) poll() (bool, error) {
	if err := d.Err(); err != nil {
		return false, err
	}
	switch C.rk_poll(d.raw.dev) {
	case 1:
		return true, nil
	case 0:
		return false, d.Err() // a mapping callback may have reported the loss
	}
	return false, d.lose("wgpu-native stopped inside wgpuDevicePoll")
}

// releaseRaw gives back the device's own references, the last ones.
func (d *Device) releaseRaw() error {
	if C.rk_release(d.raw.dev, d.raw.queue) < 0 {
		return d.lose("wgpu-native stopped inside wgpuDeviceRelease")
	}
	return nil
}

// closedError is what a closed device's operations return: for its users
// it is as gone as a lost one.
type closedError struct{}

func (closedError) Error() string        { return "gpu: the device is closed" }
func (closedError) Is(target error) bool { return target == ErrDeviceLost }

// Err reports why the device cannot be used: nil while it can, else an
// error wrapping [ErrDeviceLost] (the device was lost, or closed). Once
// set it never changes, and every operation returns it without calling
// into wgpu.
func (d *Device) Err() error {
	d.lostMu.Lock()
	defer d.lostMu.Unlock()
	return d.lostErr
}

// lose records that the device is lost, for the reason why, unless
// something was recorded before, and returns what is recorded. Mappings
// still pending will never complete: they give back their hold on the
// garbage collector.
func (d *Device) lose(why string) error {
	return d.setLost(fmt.Errorf("%w: %s", ErrDeviceLost, why))
}

func (d *Device) setLost(err error) error {
	d.lostMu.Lock()
	defer d.lostMu.Unlock()
	if d.lostErr != nil {
		return d.lostErr
	}
	d.lostErr = err
	for s := range d.maps {
		s.pending = false
		s.status = wgpu.BufferMapAsyncStatusDeviceLost
		releaseGC()
	}
	d.maps = nil
	return err
}
