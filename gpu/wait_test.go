package gpu_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

// spinKernel counts its workgroups in b[0], each after 256 steps of
// xorshift32 per thread (b[1] counts the zeros it never reaches, which
// keeps the steps from being optimised away).
const spinKernel = `
@group(0) @binding(0) var<storage, read_write> b: array<atomic<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
    var x = lid + 1u;
    for (var j = 0u; j < 256u; j++) {
        x ^= x << 13u;
        x ^= x >> 17u;
        x ^= x << 5u;
    }
    if x == 0u {
        atomicAdd(&b[1], 1u);
    }
    if lid == 0u {
        atomicAdd(&b[0], 1u);
    }
}
`

// A submission that runs longer than this wgpu's blocking poll waits (5 s)
// is waited for to its end: a staging buffer it copies into maps once the
// copy is done and reads what all the workgroups before it wrote, not
// what the buffer held before.
func TestLongSubmission(t *testing.T) {
	d := gputest.Device(t)
	k, buf, g := oneBuffer(t, d, "spin", spinKernel, 8)
	down, err := d.NewDownload(8)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Release()
	// run dispatches 1024 × rows workgroups reps times and copies their
	// count into the staging buffer in the same submission (as a step of
	// the engine does), and returns how long they took until the count was
	// read.
	run := func(rows uint32, reps int) time.Duration {
		t.Helper()
		if err := d.Upload(buf, 0, make([]byte, 8)); err != nil {
			t.Fatal(err)
		}
		if err := down.Unmap(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := d.Submit(func(enc *wgpu.CommandEncoder) error {
			for range reps {
				if err := gpu.DispatchXY(enc, k, g, 1024, rows); err != nil {
					return err
				}
			}
			return enc.CopyBufferToBuffer(buf, 0, down.Buffer(), 0, 8)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := down.Map(); err != nil {
			t.Fatal(err)
		}
		got, err := down.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if c := binary.LittleEndian.Uint32(got); c != 1024*rows*uint32(reps) {
			t.Fatalf("after %d workgroups (%v) the count reads %d", 1024*rows*uint32(reps), time.Since(start), c)
		}
		return time.Since(start)
	}
	run(1, 1) // compiles the kernel
	const probe = 64
	per := run(probe, 1) / probe
	rows := uint32(min(int64(6500*time.Millisecond/max(per, time.Microsecond))+1, gpu.MaxWorkgroupsPerDim))
	// The probe is timed on a shared CPU (lavapipe) and can overestimate:
	// until a submission outlasts the poll timeout, give it twice the
	// rows, and once a dispatch has the most rows, twice the dispatches
	// (a real GPU runs the most one dispatch may have in a fraction of a
	// second; the count stays below 2³²).
	reps := 1
	for {
		took := run(rows, reps)
		t.Logf("%d × 1024 × %d workgroups: %v", reps, rows, took)
		if took >= 5*time.Second {
			return
		}
		switch {
		case rows < gpu.MaxWorkgroupsPerDim:
			rows = min(2*rows, gpu.MaxWorkgroupsPerDim)
		case reps < 32:
			reps *= 2
		default:
			t.Fatalf("%d × 1024 × %d workgroups took only %v: no submission outlasted the poll timeout", reps, rows, took)
		}
	}
}
