package gpu

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cogentcore/webgpu/wgpu"
)

// ErrNoTimestamps is returned by NewTimer when the adapter has no
// timestamp queries.
var ErrNoTimestamps = errors.New("gpu: the adapter has no timestamp queries")

// A Timer records GPU timestamps between the passes of command encoders,
// for profiles of kernels: n timestamps, read back together.
type Timer struct {
	d    *Device
	set  *wgpu.QuerySet
	buf  *wgpu.Buffer
	down *Staging
	n    uint32
}

// NewTimer makes a timer of n timestamps.
func (d *Device) NewTimer(n int) (*Timer, error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	if !d.timestamps {
		return nil, ErrNoTimestamps
	}
	set, err := d.dev.CreateQuerySet(&wgpu.QuerySetDescriptor{Label: "timer", Type: wgpu.QueryTypeTimestamp, Count: uint32(n)})
	if err != nil {
		return nil, fmt.Errorf("gpu: timer: %w", err)
	}
	t := &Timer{d: d, set: set, n: uint32(n)}
	if t.buf, err = d.NewBuffer("timestamps", uint64(8*n), wgpu.BufferUsageQueryResolve|wgpu.BufferUsageCopySrc); err == nil {
		t.down, err = d.NewDownload(uint64(8 * n))
	}
	if err != nil {
		t.Release()
		return nil, err
	}
	return t, nil
}

// Stamp records timestamp i when the GPU reaches this point of enc
// (between passes).
func (t *Timer) Stamp(enc *wgpu.CommandEncoder, i int) error {
	if err := enc.WriteTimestamp(t.set, uint32(i)); err != nil {
		return fmt.Errorf("gpu: timestamp: %w", err)
	}
	return nil
}

// Resolve records, at the end of enc, the copy of the timestamps to where
// Read finds them.
func (t *Timer) Resolve(enc *wgpu.CommandEncoder) error {
	if err := t.down.Unmap(); err != nil {
		return err
	}
	if err := enc.ResolveQuerySet(t.set, 0, t.n, t.buf, 0); err != nil {
		return fmt.Errorf("gpu: timestamps: %w", err)
	}
	return enc.CopyBufferToBuffer(t.buf, 0, t.down.Buffer(), 0, uint64(8*t.n))
}

// Read waits for the resolved timestamps and returns them, in the
// adapter's ticks (nanoseconds on NVIDIA's Vulkan driver, whose timestamp
// period is 1 ns).
func (t *Timer) Read() ([]uint64, error) {
	b, err := t.down.Bytes()
	if err != nil {
		return nil, err
	}
	out := make([]uint64, t.n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out, nil
}

// Release frees the timer (on a lost device it only forgets it).
func (t *Timer) Release() {
	if t.d.Err() != nil {
		t.set, t.buf, t.down = nil, nil, nil
		return
	}
	if t.set != nil {
		t.set.Release()
		t.set = nil
	}
	if t.buf != nil {
		t.buf.Release()
		t.buf = nil
	}
	if t.down != nil {
		t.down.Release()
		t.down = nil
	}
}
