package gpu_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
)

var benchMB = flag.Int("gpu.mb", 64, "buffer size in MiB for the gpu benchmarks")

// oneBuffer compiles a kernel whose only binding is a storage buffer and
// binds a new buffer of size bytes to it; tb's cleanup releases all three.
func oneBuffer(tb testing.TB, d *gpu.Device, label, source string, size uint64) (*gpu.Kernel, *wgpu.Buffer, *wgpu.BindGroup) {
	tb.Helper()
	k, err := d.NewKernel(label, source, "main")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(k.Release)
	buf, err := d.Storage(label, size)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(buf.Release)
	g, err := k.Bind(gpu.Binding{Buffer: buf})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(g.Release)
	return k, buf, g
}

func TestOpen(t *testing.T) {
	d := gputest.Device(t)
	info := d.Info()
	t.Logf("adapter %s; vendor %q driver %q", info, info.Vendor, info.Driver)
	if info.Backend != "vulkan" {
		t.Errorf("backend %q, want vulkan", info.Backend)
	}
	if info.Name == "" || strings.HasPrefix(info.Name, "0x") {
		t.Errorf("name %q is not a name", info.Name)
	}
	l := d.Limits()
	t.Logf("max buffer %d, max storage binding %d, workgroup storage %d", l.MaxBufferSize, l.MaxStorageBufferBindingSize, l.MaxComputeWorkgroupStorageSize)
	a := d.AdapterLimits()
	t.Logf("adapter: max buffer %d, max storage binding %d, workgroup storage %d, storage buffers per stage %d",
		a.MaxBufferSize, a.MaxStorageBufferBindingSize, a.MaxComputeWorkgroupStorageSize, a.MaxStorageBuffersPerShaderStage)
	// WebGPU's default binding limit is 128 MiB; Open asks for the adapter's,
	// which is never smaller.
	if l.MaxStorageBufferBindingSize < 128<<20 {
		t.Errorf("storage binding limit %d below the WebGPU default", l.MaxStorageBufferBindingSize)
	}
	// Open asks for the adapter's buffer size and workgroup memory; the
	// device must have been given them, not WebGPU's defaults (256 MiB and
	// 16 KiB), which is what a request of "all ones" gets from wgpu-native.
	if want := min(a.MaxBufferSize, wgpu.LimitU64Undefined-1); l.MaxBufferSize != want {
		t.Errorf("device max buffer %d, adapter supports %d", l.MaxBufferSize, a.MaxBufferSize)
	}
	if want := min(a.MaxStorageBufferBindingSize, wgpu.LimitU64Undefined-1); l.MaxStorageBufferBindingSize != want {
		t.Errorf("device storage binding limit %d, adapter supports %d", l.MaxStorageBufferBindingSize, a.MaxStorageBufferBindingSize)
	}
	if w := a.MaxComputeWorkgroupStorageSize; w >= 16<<10 && l.MaxComputeWorkgroupStorageSize != w {
		t.Errorf("device workgroup storage %d, adapter supports %d", l.MaxComputeWorkgroupStorageSize, w)
	}
	if mb := d.MaxBinding(); mb%256 != 0 || mb > l.MaxStorageBufferBindingSize || mb > l.MaxBufferSize || mb == 0 {
		t.Errorf("MaxBinding %d inconsistent with limits", mb)
	}
}

func TestGrid(t *testing.T) {
	for _, n := range []uint32{0, 1, 65535, 65536, 131071, 200000, 1 << 31} {
		x, y := gpu.Grid(n)
		if x > gpu.MaxWorkgroupsPerDim || y > gpu.MaxWorkgroupsPerDim || uint64(x)*uint64(y) < uint64(n) || x == 0 || y == 0 {
			t.Errorf("Grid(%d) = %d×%d", n, x, y)
		}
		if uint64(x)*uint64(y)-uint64(n) >= uint64(y) && n > 0 {
			t.Errorf("Grid(%d) = %d×%d wastes %d workgroups", n, x, y, uint64(x)*uint64(y)-uint64(n))
		}
	}
	for _, c := range []struct{ n, limit, x, y uint32 }{
		{32, 3, 3, 11}, {16, 3, 3, 6}, {9, 3, 3, 3}, {3, 3, 3, 1}, {5, 0, 1, 5},
	} {
		if x, y := gpu.GridWithin(c.n, c.limit); x != c.x || y != c.y {
			t.Errorf("GridWithin(%d, %d) = %d×%d, want %d×%d", c.n, c.limit, x, y, c.x, c.y)
		}
	}
}

const indexKernel = `
@group(0) @binding(0) var<storage, read> n: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(4)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
	let w = wid.x + wid.y * nwg.x;
	if w >= n[0] {
		return;
	}
	out[w * 4u + lid] = w * 4u + lid + 1u;
}
`

// A kernel writes a storage download buffer itself, twice: it is read
// mapped, then unmapped by Reclaim with a mapping still in flight, written
// again and read again.
func TestStorageDownload(t *testing.T) {
	d := gputest.Device(t)
	if !d.StorageDownloads() {
		if _, err := d.NewStorageDownload(16); err == nil {
			t.Fatal("NewStorageDownload succeeded where StorageDownloads is false")
		}
		t.Skip("the adapter cannot bind download buffers as storage")
	}
	k, err := d.NewKernel("index", indexKernel, "main")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Release()
	const n = 1000
	nbuf, _ := d.Storage("n", 4)
	defer nbuf.Release()
	down, err := d.NewStorageDownload(4 * n * 4)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Release()
	g, err := k.Bind(gpu.Binding{Buffer: nbuf}, gpu.Binding{Buffer: down.Buffer()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	for round, count := range []uint32{n / 2, n} {
		if err := down.Reclaim(); err != nil {
			t.Fatal(err)
		}
		if err := d.Upload(nbuf, 0, binary.LittleEndian.AppendUint32(nil, count)); err != nil {
			t.Fatal(err)
		}
		if err := d.Submit(func(enc *wgpu.CommandEncoder) error { return gpu.Dispatch(enc, k, g, count) }); err != nil {
			t.Fatal(err)
		}
		if err := down.Map(); err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			continue // left mapping, for Reclaim
		}
		b, err := down.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 * n {
			if v := binary.LittleEndian.Uint32(b[4*i:]); v != uint32(i+1) {
				t.Fatalf("word %d = %d, want %d", i, v, i+1)
			}
		}
	}
}

// TestDispatch2D runs more workgroups than one dimension allows and checks
// that every invocation ran exactly where it should and nothing beyond.
func TestDispatch2D(t *testing.T) { dispatch2D(t, gputest.Device(t)) }

// dispatch2D runs a kernel over more workgroups than a grid row holds and
// checks what each wrote.
func dispatch2D(t *testing.T, d *gpu.Device) {
	k, err := d.NewKernel("index", indexKernel, "main")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Release()
	const n = 150001 // > 2 × 65535, and not a multiple of the grid's width
	const extra = 64 // words after the last workgroup that must stay 0
	nbuf, _ := d.Storage("n", 4)
	out, err := d.Storage("out", (n*4+extra)*4)
	if err != nil {
		t.Fatal(err)
	}
	defer nbuf.Release()
	defer out.Release()
	if err := d.Upload(nbuf, 0, binary.LittleEndian.AppendUint32(nil, n)); err != nil {
		t.Fatal(err)
	}
	g, err := k.Bind(gpu.Binding{Buffer: nbuf}, gpu.Binding{Buffer: out})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	err = d.Submit(func(enc *wgpu.CommandEncoder) error {
		if err := enc.ClearBuffer(out, 0, out.GetSize()); err != nil {
			return err
		}
		return gpu.Dispatch(enc, k, g, n)
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, (n*4+extra)*4)
	if err := d.Download(got, out, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n*4+extra; i++ {
		want := uint32(i + 1)
		if i >= n*4 {
			want = 0
		}
		if v := binary.LittleEndian.Uint32(got[4*i:]); v != want {
			t.Fatalf("word %d = %d, want %d", i, v, want)
		}
	}
}

func TestKernelCompileError(t *testing.T) {
	d := gputest.Device(t)
	_, err := d.NewKernel("broken", "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }", "main")
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("error %v, want one naming the kernel", err)
	}
}

func TestBindTooLarge(t *testing.T) {
	d := gputest.Device(t)
	k, err := d.NewKernel("index", indexKernel, "main")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Release()
	limit := d.Limits().MaxStorageBufferBindingSize
	if limit+256 > d.Limits().MaxBufferSize {
		t.Skip("no buffer larger than a binding on this device")
	}
	big, err := d.Storage("big", limit+256)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Release()
	small, _ := d.Storage("n", 4)
	defer small.Release()
	if _, err := k.Bind(gpu.Binding{Buffer: small}, gpu.Binding{Buffer: big}); err == nil || !strings.Contains(err.Error(), "binding limit") {
		t.Fatalf("error %v, want the binding limit", err)
	}
	// The same buffer bound in pieces no larger than the limit works.
	chunks, err := gpu.Split(limit+256, 256, d.MaxBinding())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		g, err := k.Bind(gpu.Binding{Buffer: small}, gpu.Binding{Buffer: big, Offset: c.Off, Size: c.Len})
		if err != nil {
			t.Fatalf("chunk %+v: %v", c, err)
		}
		g.Release()
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		total, unit, limit uint64
		want               []gpu.Chunk
		err                bool
	}{
		{0, 4, 16, nil, false},
		{10, 4, 16, []gpu.Chunk{{0, 10}}, false},
		{40, 4, 16, []gpu.Chunk{{0, 16}, {16, 16}, {32, 8}}, false},
		{40, 6, 16, []gpu.Chunk{{0, 12}, {12, 12}, {24, 12}, {36, 4}}, false},
		{40, 32, 16, nil, true},
		{40, 0, 16, nil, true},
	}
	for _, tt := range tests {
		got, err := gpu.Split(tt.total, tt.unit, tt.limit)
		if (err != nil) != tt.err || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Split(%d, %d, %d) = %v, %v; want %v (error %v)", tt.total, tt.unit, tt.limit, got, err, tt.want, tt.err)
		}
	}
}

// TestUploadDownload round-trips data larger than the staging buffers, so
// that they are reused across pieces.
func TestUploadDownload(t *testing.T) {
	d := gputest.Device(t)
	n := 64<<20 + 1028
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	buf, err := d.Storage("rt", uint64(n)+8)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Release()
	if err := d.Upload(buf, 8, data); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, n)
	if err := d.Download(got, buf, 8); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("round trip changed the data")
	}
	if err := d.Upload(buf, 2, data[:4]); err == nil {
		t.Error("unaligned upload accepted")
	}
}

// TestStagingCycle fills, sends, remaps and refills one upload buffer and
// reads through one download buffer several times.
func TestStagingCycle(t *testing.T) {
	d := gputest.Device(t)
	const size = 4096
	up, err := d.NewUpload(size)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Release()
	down, err := d.NewDownload(size)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Release()
	dev, err := d.Storage("mid", size)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Release()
	for round := range 3 {
		b, err := up.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = byte(i*7 + round)
		}
		if err := up.Unmap(); err != nil {
			t.Fatal(err)
		}
		if err := down.Unmap(); err != nil {
			t.Fatal(err)
		}
		err = d.Submit(func(enc *wgpu.CommandEncoder) error {
			if err := enc.CopyBufferToBuffer(up.Buffer(), 0, dev, 0, size); err != nil {
				return err
			}
			return enc.CopyBufferToBuffer(dev, 0, down.Buffer(), 0, size)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := up.Map(); err != nil {
			t.Fatal(err)
		}
		got, err := down.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != byte(i*7+round) {
				t.Fatalf("round %d: byte %d = %d", round, i, got[i])
			}
		}
	}
}

// TestMapPrefix maps only the first bytes of a download buffer, several
// times with different lengths, and sees the data copied there.
func TestMapPrefix(t *testing.T) {
	d := gputest.Device(t)
	const size = 1 << 16
	down, err := d.NewDownload(size)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Release()
	src, err := d.Storage("src", size)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Release()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 13)
	}
	if err := d.Upload(src, 0, data); err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{4, 1000, 4096, size} {
		if err := down.Unmap(); err != nil {
			t.Fatal(err)
		}
		err := d.Submit(func(enc *wgpu.CommandEncoder) error {
			return enc.CopyBufferToBuffer(src, 0, down.Buffer(), 0, n)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := down.MapPrefix(n); err != nil {
			t.Fatal(err)
		}
		got, err := down.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(got)) != n || !bytes.Equal(got, data[:n]) {
			t.Fatalf("prefix %d: got %d bytes, want the first %d of the source", n, len(got), n)
		}
	}
}

func TestSoftware(t *testing.T) {
	for _, c := range []struct {
		typ  string
		want bool
	}{{"cpu", true}, {"discrete-gpu", false}, {"integrated-gpu", false}, {"unknown", false}} {
		if got := (gpu.Info{Type: c.typ}).Software(); got != c.want {
			t.Errorf("Software() of type %q = %v", c.typ, got)
		}
	}
	d := gputest.Device(t)
	t.Logf("%s: software %v", d.Info(), d.Info().Software())
}

// BenchmarkCopy measures the device's own buffer-to-buffer copy bandwidth
// (bytes copied per second; the memory traffic is twice that). Run with
// -gpu.mb to change the size.
func BenchmarkCopy(b *testing.B) {
	d := gputest.Device(b)
	size := uint64(*benchMB) << 20
	src, err := d.Storage("src", size)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Release()
	dst, err := d.Storage("dst", size)
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Release()
	b.SetBytes(int64(size))
	for b.Loop() {
		err := d.Submit(func(enc *wgpu.CommandEncoder) error {
			return enc.CopyBufferToBuffer(src, 0, dst, 0, size)
		})
		if err != nil {
			b.Fatal(err)
		}
		d.Wait()
	}
}

// BenchmarkUpload measures host→device transfer through Upload (a reused
// mapped staging buffer and a copy).
func BenchmarkUpload(b *testing.B) {
	d := gputest.Device(b)
	size := uint64(*benchMB) << 20
	dst, err := d.Storage("dst", size)
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Release()
	data := make([]byte, size)
	b.SetBytes(int64(size))
	for b.Loop() {
		if err := d.Upload(dst, 0, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDownload measures device→host transfer through Download.
func BenchmarkDownload(b *testing.B) {
	d := gputest.Device(b)
	size := uint64(*benchMB) << 20
	src, err := d.Storage("src", size)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Release()
	data := make([]byte, size)
	b.SetBytes(int64(size))
	for b.Loop() {
		if err := d.Download(data, src, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// fmaKernel runs chains of float32 multiply-adds with nothing else: 16
// independent vec4 chains a thread, 4 steps of each an iteration, N
// iterations.
const fmaKernel = `
@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;
const N: u32 = %du;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    var a: array<vec4<f32>, 16>;
    let x = vec4<f32>(f32(g.x) * 1e-9);
    let y = vec4<f32>(0.5 - f32(g.x) * 1e-9);
    for (var c = 0u; c < 16u; c++) {
        a[c] = vec4<f32>(f32(c));
    }
    for (var i = 0u; i < N; i++) {
        for (var s = 0u; s < 4u; s++) {
            a[0] = fma(a[0], x, y); a[1] = fma(a[1], x, y); a[2] = fma(a[2], x, y); a[3] = fma(a[3], x, y);
            a[4] = fma(a[4], x, y); a[5] = fma(a[5], x, y); a[6] = fma(a[6], x, y); a[7] = fma(a[7], x, y);
            a[8] = fma(a[8], x, y); a[9] = fma(a[9], x, y); a[10] = fma(a[10], x, y); a[11] = fma(a[11], x, y);
            a[12] = fma(a[12], x, y); a[13] = fma(a[13], x, y); a[14] = fma(a[14], x, y); a[15] = fma(a[15], x, y);
        }
    }
    var s = vec4<f32>(0.0);
    for (var c = 0u; c < 16u; c++) {
        s += a[c];
    }
    out[g.x] = s;
}
`

// BenchmarkFMA measures the float32 multiply-add rate a WGSL kernel
// attains: the ceiling of the matrix products, against which their share
// of the data-sheet peak is read.
func BenchmarkFMA(b *testing.B) {
	d := gputest.Device(b)
	const iters, groups = 1024, 2048
	k, _, g := oneBuffer(b, d, "fma", fmt.Sprintf(fmaKernel, iters), 16*256*groups)
	run := func() {
		err := d.Submit(func(enc *wgpu.CommandEncoder) error {
			p := gpu.BeginPass(enc)
			p.Dispatch(k, g, groups, 1)
			return p.End()
		})
		if err == nil {
			err = d.Wait()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	run()
	for b.Loop() {
		run()
	}
	flops := 2.0 * 4 * 16 * 4 * iters * 256 * groups
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
}

// addKernel adds 1 to every word of a buffer it reads and writes, so that
// each of its dispatches depends on the one before and a pass puts a
// barrier between them, as between the ops of a model's step.
const addKernel = `
@group(0) @binding(0) var<storage, read_write> buf: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    buf[g.x] = buf[g.x] + 1.0;
}
`

// BenchmarkDispatch measures what a dispatch costs beyond its work: a pass
// of n dispatches of a kernel of almost none, each waiting for the one
// before, submitted and waited for. It reports the wall time and the GPU
// time (between timestamps, where the adapter has them) per dispatch, and
// the CPU time recording one. A model's step of a few hundred dependent
// dispatches pays this before any of its arithmetic.
func BenchmarkDispatch(b *testing.B) {
	d := gputest.Device(b)
	for _, c := range []struct{ n, groups int }{{1, 1}, {256, 1}, {256, 132}, {256, 1056}} {
		b.Run(fmt.Sprintf("n=%d/workgroups=%d", c.n, c.groups), func(b *testing.B) {
			k, _, g := oneBuffer(b, d, "add", addKernel, uint64(4*256*c.groups))
			timer, err := d.NewTimer(2)
			if err != nil && !errors.Is(err, gpu.ErrNoTimestamps) {
				b.Fatal(err)
			}
			if timer != nil {
				defer timer.Release()
			}
			var gpuTime, rec time.Duration
			run := func() {
				start := time.Now()
				err := d.Submit(func(enc *wgpu.CommandEncoder) error {
					if timer != nil {
						if err := timer.Stamp(enc, 0); err != nil {
							return err
						}
					}
					p := gpu.BeginPass(enc)
					for range c.n {
						p.Dispatch(k, g, uint32(c.groups), 1)
					}
					if err := p.End(); err != nil {
						return err
					}
					if timer != nil {
						if err := timer.Stamp(enc, 1); err != nil {
							return err
						}
						return timer.Resolve(enc)
					}
					return nil
				})
				rec += time.Since(start)
				if err == nil {
					err = d.Wait()
				}
				if err == nil && timer != nil {
					var ts []uint64
					if ts, err = timer.Read(); err == nil {
						gpuTime += time.Duration(ts[1] - ts[0])
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			run()
			gpuTime, rec = 0, 0
			for b.Loop() {
				run()
			}
			per := float64(b.N * c.n)
			b.ReportMetric(float64(b.Elapsed().Microseconds())/per, "wall-µs/dispatch")
			b.ReportMetric(float64(rec.Microseconds())/per, "record-µs/dispatch")
			if timer != nil {
				b.ReportMetric(float64(gpuTime.Nanoseconds())/1e3/per, "gpu-µs/dispatch")
			}
		})
	}
}
