package gpu

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/cogentcore/webgpu/wgpu"
)

// NewBuffer creates a buffer of size bytes (rounded up to a multiple of 4),
// checking the size against the device's limit first so that the error says
// what was asked for.
func (d *Device) NewBuffer(label string, size uint64, usage wgpu.BufferUsage) (*wgpu.Buffer, error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	size = max(align4(size), 4)
	if size > d.limits.MaxBufferSize {
		return nil, fmt.Errorf("gpu: buffer %q of %d bytes exceeds the device's maximum buffer size %d", label, size, d.limits.MaxBufferSize)
	}
	b, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{Label: label, Size: size, Usage: usage})
	if err != nil {
		return nil, fmt.Errorf("gpu: buffer %q of %d bytes: %w", label, size, err)
	}
	return b, nil
}

// Storage creates a storage buffer that can also be copied to and from.
func (d *Device) Storage(label string, size uint64) (*wgpu.Buffer, error) {
	return d.NewBuffer(label, size, wgpu.BufferUsageStorage|wgpu.BufferUsageCopySrc|wgpu.BufferUsageCopyDst)
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// A Staging buffer is host-visible memory that is mapped for writing (an
// upload buffer, copied from) or for reading (a download buffer, copied to),
// and reused: mapping a fresh buffer for every transfer is slow. The cycle is
// Bytes (fill or read) → Unmap → use in a copy → submit → Map → Bytes …
type Staging struct {
	d       *Device
	buf     *wgpu.Buffer
	size    uint64
	write   bool
	mapped  bool
	pending bool
	status  wgpu.BufferMapAsyncStatus
	mapLen  uint64 // bytes mapped (or being mapped) from the start
}

// NewUpload creates an upload staging buffer of size bytes, mapped and ready
// to be filled.
func (d *Device) NewUpload(size uint64) (*Staging, error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	size = max(align4(size), 4)
	if size > d.limits.MaxBufferSize {
		return nil, fmt.Errorf("gpu: upload buffer of %d bytes exceeds the device's maximum buffer size %d", size, d.limits.MaxBufferSize)
	}
	b, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{
		Label: "upload", Size: size,
		Usage:            wgpu.BufferUsageMapWrite | wgpu.BufferUsageCopySrc,
		MappedAtCreation: true,
	})
	if err != nil {
		return nil, fmt.Errorf("gpu: upload buffer of %d bytes: %w", size, err)
	}
	return &Staging{d: d, buf: b, size: size, write: true, mapped: true, mapLen: size}, nil
}

// NewDownload creates a download staging buffer of size bytes. It is not
// mapped until Map is called after a copy into it has been submitted.
func (d *Device) NewDownload(size uint64) (*Staging, error) {
	return d.newDownload(size, wgpu.BufferUsageMapRead|wgpu.BufferUsageCopyDst)
}

func (d *Device) newDownload(size uint64, usage wgpu.BufferUsage) (*Staging, error) {
	b, err := d.NewBuffer("download", size, usage)
	if err != nil {
		return nil, err
	}
	return &Staging{d: d, buf: b, size: max(align4(size), 4)}, nil
}

// StorageDownloads reports whether kernels can write download buffers
// themselves (see NewStorageDownload).
func (d *Device) StorageDownloads() bool { return d.mappable }

// NewStorageDownload creates a download staging buffer that kernels can also
// bind as storage while it is unmapped, on a device where StorageDownloads
// holds (wgpu-native's mappable primary buffers). Results written straight
// into it need no copy on the queue: on a discrete GPU the download buffer
// is host memory, so the kernel's writes cross the bus while it computes,
// where a copy would run after it and hold the queue.
func (d *Device) NewStorageDownload(size uint64) (*Staging, error) {
	if !d.mappable {
		return nil, errors.New("gpu: the device cannot bind download buffers as storage")
	}
	return d.newDownload(size, wgpu.BufferUsageMapRead|wgpu.BufferUsageCopyDst|wgpu.BufferUsageStorage)
}

// Buffer is the staging buffer, for use in copies while it is unmapped.
func (s *Staging) Buffer() *wgpu.Buffer { return s.buf }

// Size is the buffer's byte size.
func (s *Staging) Size() uint64 { return s.size }

// Map requests the buffer to be mapped again once the GPU is done with it
// (call it after submitting the work that uses the buffer). It returns at
// once; Bytes waits for the mapping, and for no later submission.
func (s *Staging) Map() error { return s.MapPrefix(s.size) }

// MapPrefix is Map of the first n bytes only (rounded up to a multiple of
// 4): a large download buffer of which a step fills a little maps faster.
func (s *Staging) MapPrefix(n uint64) error {
	if err := s.d.Err(); err != nil {
		return err
	}
	if s.mapped || s.pending {
		return nil
	}
	s.mapLen = min(max(align4(n), 4), s.size)
	mode := wgpu.MapModeRead
	if s.write {
		mode = wgpu.MapModeWrite
	}
	s.pending = true
	holdGC()
	s.d.track(s)
	err := s.buf.MapAsync(mode, 0, s.mapLen, func(st wgpu.BufferMapAsyncStatus) {
		if !s.d.settle(s) {
			return // the device was found lost first and settled it
		}
		s.status = st
		s.pending = false
		s.mapped = st == wgpu.BufferMapAsyncStatusSuccess
		releaseGC()
		if st == wgpu.BufferMapAsyncStatusDeviceLost {
			s.d.lose("a buffer mapping reported it")
		}
	})
	if err != nil {
		if s.d.settle(s) {
			s.pending = false
			releaseGC()
		}
		return fmt.Errorf("gpu: map staging buffer: %w", err)
	}
	return nil
}

// track notes a mapping requested of s.
func (d *Device) track(s *Staging) {
	d.lostMu.Lock()
	defer d.lostMu.Unlock()
	if d.maps == nil {
		d.maps = map[*Staging]struct{}{}
	}
	d.maps[s] = struct{}{}
}

// settle forgets the mapping of s and reports whether it was still
// pending (a lost device settles all of them at once).
func (d *Device) settle(s *Staging) bool {
	d.lostMu.Lock()
	defer d.lostMu.Unlock()
	_, ok := d.maps[s]
	delete(d.maps, s)
	return ok
}

// The webgpu binding hands C a pointer to a heap word holding the map
// callback's handle, and keeps no Go reference to it; if a garbage
// collection frees and reuses that word before the callback runs, the
// callback finds a wrong handle and the process panics ("misuse of an
// invalid Handle"), which happened when other goroutines allocated while a
// mapping was pending. So the collector is paused from MapAsync until the
// callback has run. A mapping lasts until the next Poll that completes it,
// and the users of a Device wait for their mappings within each operation,
// so the pause covers one operation's allocations.
var gcHold struct {
	sync.Mutex
	n       int
	percent int
}

func holdGC() {
	gcHold.Lock()
	defer gcHold.Unlock()
	if gcHold.n == 0 {
		gcHold.percent = debug.SetGCPercent(-1)
	}
	gcHold.n++
}

func releaseGC() {
	gcHold.Lock()
	defer gcHold.Unlock()
	gcHold.n--
	if gcHold.n == 0 {
		debug.SetGCPercent(gcHold.percent)
	}
}

// Bytes returns the mapped memory (the prefix MapPrefix asked for, else the
// whole buffer), waiting (and requesting the mapping) if needed. The slice
// is valid until Unmap. A lost device gives an error wrapping
// [ErrDeviceLost].
func (s *Staging) Bytes() ([]byte, error) {
	if err := s.d.Err(); err != nil {
		return nil, err
	}
	if !s.mapped {
		if err := s.Map(); err != nil {
			return nil, err
		}
		for s.pending {
			if err := s.d.pollUntil(func() bool { return !s.pending }); err != nil {
				return nil, err
			}
		}
		if !s.mapped {
			if err := s.d.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("gpu: mapping a staging buffer failed: %v", s.status)
		}
	}
	return s.buf.GetMappedRange(0, uint(s.mapLen)), nil
}

// Unmap hands the buffer back to the GPU.
func (s *Staging) Unmap() error {
	if err := s.d.Err(); err != nil {
		return err
	}
	if !s.mapped {
		return nil
	}
	s.mapped = false
	if err := s.buf.Unmap(); err != nil {
		return fmt.Errorf("gpu: unmap staging buffer: %w", err)
	}
	return nil
}

// Reclaim waits for a mapping in flight and unmaps the buffer, so that the
// GPU may use it again whatever state it was left in.
func (s *Staging) Reclaim() error {
	if err := s.d.Err(); err != nil {
		return err
	}
	if s.pending {
		if err := s.d.pollUntil(func() bool { return !s.pending }); err != nil {
			return err
		}
	}
	return s.Unmap()
}

// Release frees the buffer (on a lost device it only forgets it).
func (s *Staging) Release() {
	if s.buf != nil {
		if s.d.Err() == nil {
			s.buf.Release()
		}
		s.buf = nil
	}
}

// stagingChunk bounds the staging memory that Upload and Download keep.
const stagingChunk = 64 << 20

// ErrDeviceLost is returned (wrapped) when the GPU stopped answering: its
// driver reset it, or it was removed, or wgpu gave up on it. Nothing on it
// can be used again; [Device.Err] says why.
var ErrDeviceLost = errors.New("gpu: the device was lost (reset by its driver or removed)")

var errAlign = errors.New("gpu: offsets and lengths of transfers must be multiples of 4 bytes")

// Upload copies data into dst at byte offset off through reused upload
// staging buffers, and waits until it is there. off and len(data) must be
// multiples of 4.
func (d *Device) Upload(dst *wgpu.Buffer, off uint64, data []byte) error {
	return d.UploadFrom(dst, off, uint64(len(data)), func(b []byte, at uint64) error {
		copy(b, data[at:])
		return nil
	})
}

// UploadFrom copies n bytes into dst at byte offset off, each chunk of them
// written by fill (into b, the chunk's staging memory, the bytes from at),
// and waits until they are there. Two staging buffers take the chunks in
// turn, so that fill writes one while the GPU copies the other: a model's
// weights go from a file to the GPU at the speed of the slower of the two,
// with no copy of their own in between. off and n must be multiples of 4.
func (d *Device) UploadFrom(dst *wgpu.Buffer, off, n uint64, fill func(b []byte, at uint64) error) error {
	if err := d.Err(); err != nil {
		return err
	}
	if off%4 != 0 || n%4 != 0 {
		return errAlign
	}
	for at, i := uint64(0), 0; at < n; i = 1 - i {
		up, err := d.stagingFor(&d.upload[i], true, n-at)
		if err != nil {
			return err
		}
		m := min(n-at, up.size)
		b, err := up.Bytes() // waits for the copy that last used it
		if err != nil {
			return err
		}
		if err := fill(b[:m], at); err != nil {
			return err
		}
		if err := up.Unmap(); err != nil {
			return err
		}
		err = d.Submit(func(enc *wgpu.CommandEncoder) error {
			return enc.CopyBufferToBuffer(up.buf, 0, dst, off+at, m)
		})
		if err != nil {
			return err
		}
		if err := up.Map(); err != nil {
			return err
		}
		at += m
	}
	return d.Wait()
}

// Write copies data into dst at byte offset off through the queue, which
// stages it and copies it before the next submission runs: for small
// writes (uniforms, descriptions of work, single states) that are not
// worth a staging buffer. off and len(data) must be multiples of 4.
func (d *Device) Write(dst *wgpu.Buffer, off uint64, data []byte) error {
	if err := d.Err(); err != nil {
		return err
	}
	if off%4 != 0 || len(data)%4 != 0 {
		return errAlign
	}
	if err := d.queue.WriteBuffer(dst, off, data); err != nil {
		return fmt.Errorf("gpu: %w", err)
	}
	return nil
}

// Download copies len(dst) bytes from src at byte offset off into dst
// through a reused download staging buffer. off and len(dst) must be
// multiples of 4.
func (d *Device) Download(dst []byte, src *wgpu.Buffer, off uint64) error {
	if err := d.Err(); err != nil {
		return err
	}
	if off%4 != 0 || len(dst)%4 != 0 {
		return errAlign
	}
	var down *Staging
	for len(dst) > 0 {
		var err error
		if down == nil {
			if down, err = d.stagingFor(&d.download, false, uint64(len(dst))); err != nil {
				return err
			}
		}
		n := min(uint64(len(dst)), down.size)
		if err := down.Unmap(); err != nil {
			return err
		}
		err = d.Submit(func(enc *wgpu.CommandEncoder) error {
			return enc.CopyBufferToBuffer(src, off, down.buf, 0, n)
		})
		if err != nil {
			return err
		}
		b, err := down.Bytes()
		if err != nil {
			return err
		}
		copy(dst, b[:n])
		dst, off = dst[n:], off+n
	}
	return nil
}

// stagingFor returns the staging buffer kept in *slot, replaced by a larger
// one (up to stagingChunk) when need exceeds it.
func (d *Device) stagingFor(slot **Staging, write bool, need uint64) (*Staging, error) {
	want := min(max(align4(need), 4), stagingChunk)
	if s := *slot; s != nil && s.size >= want {
		return s, nil
	}
	if *slot != nil {
		if (*slot).pending {
			// Settle its mapping first: an upload may still copy from it.
			if _, err := (*slot).Bytes(); err != nil {
				return nil, err
			}
		}
		(*slot).Release()
		*slot = nil
	}
	var s *Staging
	var err error
	if write {
		s, err = d.NewUpload(want)
	} else {
		s, err = d.NewDownload(want)
	}
	if err != nil {
		return nil, err
	}
	*slot = s
	return s, nil
}
