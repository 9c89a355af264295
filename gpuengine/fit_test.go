package gpuengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/internal/gputest"
	"github.com/rwkvkit/rwkvkit/internal/synth"
)

var (
	workgroupVar = regexp.MustCompile(`(?m)^var<workgroup>\s+\w+\s*:\s*(.+);`)
	wgslConst    = regexp.MustCompile(`(?m)^const\s+(\w+)\s*:\s*u32\s*=\s*(\d+)u\s*;`)
)

// wgslSize is the byte size of a WGSL type made of f32, u32, vec4<f32> and
// arrays of them, with array lengths that are numbers or constants.
func wgslSize(typ string, consts map[string]int) (int, error) {
	typ = strings.TrimSpace(typ)
	switch typ {
	case "f32", "u32", "i32":
		return 4, nil
	case "vec4<f32>", "vec4<u32>":
		return 16, nil
	}
	if !strings.HasPrefix(typ, "array<") || !strings.HasSuffix(typ, ">") {
		return 0, fmt.Errorf("type %q", typ)
	}
	inner := typ[len("array<") : len(typ)-1]
	comma := strings.LastIndex(inner, ",")
	if comma < 0 {
		return 0, fmt.Errorf("runtime-sized %q", typ)
	}
	elem, err := wgslSize(inner[:comma], consts)
	if err != nil {
		return 0, err
	}
	count := strings.TrimSuffix(strings.TrimSpace(inner[comma+1:]), "u")
	n, err := strconv.Atoi(count)
	if err != nil {
		v, ok := consts[count]
		if !ok {
			return 0, fmt.Errorf("length %q of %q", count, typ)
		}
		n = v
	}
	return n * elem, nil
}

// The workgroup memory checkKernels expects of each head kernel is what its
// var<workgroup> declarations take, at every head size, and every kernel
// whose workgroup is a head is among them.
func TestHeadKernelMemory(t *testing.T) {
	listed := map[string]bool{}
	for _, k := range headKernels {
		listed[k.file] = true
		src := wgsl(k.file)
		for _, n := range []int{32, 64, 128} {
			consts := map[string]int{"N": n}
			for _, m := range wgslConst.FindAllStringSubmatch(src, -1) {
				consts[m[1]], _ = strconv.Atoi(m[2])
			}
			consts["N4"] = n / 4 // const N4: u32 = N / 4u
			consts["HQ"] = n / 4 // headnorm.wgsl: const HQ: u32 = N / 4u
			consts["LORA4"] = n  // timemix7.wgsl without the LoRA stages
			total := 0
			for _, m := range workgroupVar.FindAllStringSubmatch(src, -1) {
				size, err := wgslSize(m[1], consts)
				if err != nil {
					t.Fatalf("%s: %v", k.file, err)
				}
				total += size
			}
			if want := 4 * k.floats * n; total != want {
				t.Errorf("%s at head size %d: %d bytes of workgroup memory declared, checkKernels expects %d", k.file, n, total, want)
			}
		}
	}
	files, err := wgslFS.ReadDir("wgsl")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.Contains(wgsl(f.Name()), "@workgroup_size(N)") && !listed[f.Name()] {
			t.Errorf("%s has a workgroup per head but is not among the head kernels", f.Name())
		}
	}
}

// A head size that needs more invocations per workgroup or more workgroup
// memory than the device has is refused at load with the sizes, before
// any tensor is read: the model's tensors here cannot be read at all.
func TestHeadTooLarge(t *testing.T) {
	d := gputest.Device(t)
	src, err := synth.RWKV7(synth.Config{Layers: 1, Embed: 128, Vocab: 64, HeadSize: 64, DecayLoRA: 32, ALoRA: 32, VLoRA: 32, GLoRA: 32}, format.F16, 1)
	if err != nil {
		t.Fatal(err)
	}
	unreadable := &format.Source{Metadata: src.Metadata}
	for _, x := range src.Tensors {
		u, err := format.NewTensor(x.Name, x.DType, x.Shape, func() (io.ReadCloser, error) { return nil, errors.New("read") })
		if err != nil {
			t.Fatal(err)
		}
		unreadable.Tensors = append(unreadable.Tensors, u)
	}
	real := deviceLimits
	t.Cleanup(func() { deviceLimits = real })
	for _, c := range []struct {
		name string
		fake func(l *wgpu.Limits)
		want []string
	}{
		{"invocations", func(l *wgpu.Limits) { l.MaxComputeInvocationsPerWorkgroup = 32 }, []string{"head size 64", "64 invocations", "allows 32"}},
		{"workgroup width", func(l *wgpu.Limits) { l.MaxComputeWorkgroupSizeX = 48 }, []string{"head size 64", "64 invocations", "allows 48"}},
		{"workgroup memory", func(l *wgpu.Limits) { l.MaxComputeWorkgroupStorageSize = 8 << 10 }, []string{"head size 64", "16384 bytes", "recur7.wgsl", "has 8192"}},
		{"invocations of the recurrence", func(l *wgpu.Limits) { l.MaxComputeInvocationsPerWorkgroup = 128 }, []string{"head size 64", "256 invocations", "recur7.wgsl", "allows 128"}},
	} {
		deviceLimits = func(d *gpu.Device) wgpu.Limits {
			l := d.Limits()
			c.fake(&l)
			return l
		}
		_, err := Load(context.Background(), d, unreadable, nil)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, err, w)
			}
		}
		t.Logf("%s: %v", c.name, err)
	}
	deviceLimits = real
	if _, err := Load(context.Background(), d, unreadable, nil); err == nil || errors.Is(err, ErrTooLarge) {
		t.Errorf("with the device's own limits: %v, want the read error", err)
	}
}
