package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/hostile"
	"github.com/rwkvkit/rwkvkit/safetensors"
	"github.com/rwkvkit/rwkvkit/serialize"
)

// Bounds every command keeps on any input, hostile or not: peak memory
// (VmHWM) at most memPerByte bytes per input byte plus memBase (the
// process itself), error text at most maxStderr bytes, output at most
// outPerByte bytes per input byte plus outBase, and an end within
// hostileTimeout (a guard against hangs, not a measure of speed).
const (
	memPerByte     = 16
	memBase        = 128 << 20
	maxStderr      = 4096
	outPerByte     = 4
	outBase        = 1 << 20
	hostileTimeout = 60 * time.Second
)

// childRun is what a command run in a child process did.
type childRun struct {
	code   int
	stderr []byte
	peak   int64 // VmHWM, bytes
	cpu    time.Duration
}

// runChild runs the command in a child process, watching its peak resident
// memory from outside (the child exits with os.Exit on failure, before any
// hook could report it; VmHWM is a high-water mark, so the last reading
// before the exit holds the peak but for the last millisecond).
func runChild(t testing.TB, args ...string) childRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RWKVKIT_RUN_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak := make(chan int64)
	go func() {
		var hwm int64
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for ctx.Err() == nil {
			if b, err := os.ReadFile(status); err == nil {
				if m := vmHWM.FindSubmatch(b); m != nil {
					kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
					hwm = max(hwm, kb<<10)
				}
			}
			time.Sleep(time.Millisecond)
		}
		peak <- hwm
	}()
	err := cmd.Wait()
	cancel()
	r := childRun{stderr: stderr.Bytes(), peak: <-peak}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v (not finished within %v?)", args, err, hostileTimeout)
	}
	return r
}

var vmHWM = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)

// A hostileCase is one input and one command run on it.
type hostileCase struct {
	name string
	file string   // the input, in the test's folder
	args []string // the command; "IN" and "OUT" stand for the input and an output path
	code int      // the exit status wanted: 2 refused, 0 done
	want string   // what stderr must say
}

// Crafted inputs of every class that once cost a thousand times their size
// (or far more) run through the commands: each exits as wanted, within the
// bounds above, and a refused one writes nothing.
func TestHostileInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 100 MB of crafted files")
	}
	dir := t.TempDir()
	write := func(name string, data []byte) {
		must(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	const mib = 1 << 20
	write("reduce-bomb.pth", hostile.Checkpoint(hostile.ReduceOnList(mib, 4000), nil))
	alias := map[string][]byte{"0": hostile.F32(mib / 4)}
	write("alias-views.pth", hostile.Checkpoint(hostile.Aliased(2000, mib/4, false), alias))
	write("alias-memo.pth", hostile.Checkpoint(hostile.Aliased(2000, mib/4, true), alias))
	write("alias-records.pth", hostile.OverlappingRecords(distinctStorages(2000, mib/4), hostile.F32(mib/4), 2000))
	write("long-list.pth", hostile.Checkpoint(hostile.LongList(60*mib), nil))
	write("long-list-legacy.pth", hostile.Legacy(hostile.LongList(24*mib), nil))
	write("deep-layers.pth", tinyWithLayers(t, 4000))
	write("tied.pth", tinyWithLayers(t, 0))
	write("empty-200k.st", emptyTensorsST(t, 200_000))
	write("empty-131k.rkv", emptyTensorsRKV(t, dir, 131_072))
	write("long-name.st", longNameST(mib))
	write("long-name-lora.st", longNameLoRA(t, mib))

	cases := []hostileCase{
		{"REDUCE on a list of 4000 references to a 1 MiB string", "reduce-bomb.pth", []string{"inspect", "IN"}, 2, "a list cannot be called"},
		{"the same through convert", "reduce-bomb.pth", []string{"convert", "IN", "OUT.st"}, 2, "a list cannot be called"},
		{"2000 views of one 1 MiB storage", "alias-views.pth", []string{"convert", "IN", "OUT.st"}, 2, `tensors "w0", "w1", "w2" and 1997 more share storage "0"`},
		{"2000 names of one memoized tensor", "alias-memo.pth", []string{"convert", "IN", "OUT.st"}, 2, `and 1997 more share storage "0"`},
		{"2000 zip records on one stretch of the file", "alias-records.pth", []string{"inspect", "IN"}, 2, "more than 4 times"},
		{"a 60 MB pickle of one long list", "long-list.pth", []string{"inspect", "IN"}, 2, "needs more memory than a file of its size"},
		{"a 24 MB legacy pickle of one long list", "long-list-legacy.pth", []string{"inspect", "IN"}, 2, "needs more memory than a file of its size"},
		{"a model of 4000 layers sharing layer 0", "deep-layers.pth", []string{"run", "IN", "--prompt", "a", "-n", "1"}, 2, "share storage"},
		{"tied embedding and head", "tied.pth", []string{"run", "IN", "--prompt", "a", "-n", "4"}, 0, ""},
		{"tied embedding and head, converted", "tied.pth", []string{"convert", "IN", "OUT.st"}, 0, ""},
		{"200k empty tensors in a .st", "empty-200k.st", []string{"convert", "IN", "OUT.st"}, 0, ""},
		{"131k empty tensors in an .rkv", "empty-131k.rkv", []string{"convert", "IN", "OUT.st"}, 0, ""},
		{"a 1 MiB tensor name in a bad entry", "long-name.st", []string{"inspect", "IN"}, 2, "unknown dtype"},
		{"a LoRA with an unpaired tensor of a 1 MiB name", "long-name-lora.st",
			[]string{"merge", tiny + "st/tiny-rwkv-7v0-834K.st", "OUT.rkv", "--lora", "IN", "--device", "cpu"}, 2, "bytes in all)"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(dir, tc.file)
			out := filepath.Join(dir, fmt.Sprintf("out%d", i))
			args := make([]string, len(tc.args))
			for j, a := range tc.args {
				args[j] = strings.Replace(strings.Replace(a, "IN", in, 1), "OUT", out, 1)
			}
			fi, err := os.Stat(in)
			must(t, err)
			size := fi.Size()
			r := runChild(t, args...)
			t.Logf("%d-byte input: exit %d, peak %d MB (%.1f bytes per input byte), %v CPU, %d bytes of stderr",
				size, r.code, r.peak>>20, float64(r.peak)/float64(size), r.cpu.Round(time.Millisecond), len(r.stderr))
			if r.code != tc.code {
				t.Errorf("exit %d, want %d: %.500s", r.code, tc.code, r.stderr)
			}
			if !bytes.Contains(r.stderr, []byte(tc.want)) {
				t.Errorf("stderr %.500q lacks %q", r.stderr, tc.want)
			}
			if len(r.stderr) > maxStderr {
				t.Errorf("%d bytes of stderr", len(r.stderr))
			}
			if limit := memPerByte*size + memBase; r.peak > limit {
				t.Errorf("peak memory %d MB, more than %d per input byte plus %d MB", r.peak>>20, memPerByte, memBase>>20)
			}
			matches, _ := filepath.Glob(out + "*")
			for _, m := range matches {
				ofi, err := os.Stat(m)
				must(t, err)
				if tc.code != 0 {
					t.Errorf("refused, yet wrote %s", m)
				} else if ofi.Size() > outPerByte*size+outBase {
					t.Errorf("%d-byte output for a %d-byte input", ofi.Size(), size)
				}
			}
			if tc.code == 0 && len(matches) == 0 && args[0] == "convert" {
				t.Error("no output")
			}
		})
	}
}

// distinctStorages is the pickle of n tensors, each on its own storage
// (keys 0 … n-1) of numel float32 elements.
func distinctStorages(n int, numel int64) []byte {
	p := hostile.NewPickle().Op('}', '(')
	for i := range n {
		p.Entry(hostile.TensorSpec{Name: fmt.Sprint("w", i), Key: fmt.Sprint(i), StorageType: "FloatStorage",
			Numel: numel, Shape: []int64{numel}, Stride: []int64{1}})
	}
	return p.Op('u', '.').Bytes()
}

// tinyWithLayers rewrites the tiny RWKV-7 fixture as torch would save a
// model whose layers 1 … layers share layer 0's tensors (their storages),
// with head.weight tied to emb.weight; layers 0 keeps the fixture's own
// layers, only tying the head.
func tinyWithLayers(t testing.TB, layers int) []byte {
	src, err := format.Open(tiny + "tiny-rwkv-7v0-834K.pth")
	must(t, err)
	defer src.Close()
	storageType := map[format.DType]string{format.F32: "FloatStorage", format.BF16: "BFloat16Storage", format.F16: "HalfStorage"}
	storages := map[string][]byte{}
	keys := map[string]string{} // tensor name → storage key
	var entries []hostile.TensorSpec
	add := func(name, key string, tn *format.Tensor) {
		st := hostile.TensorSpec{Name: name, Key: key, StorageType: storageType[tn.DType], Numel: tn.Len(), Shape: tn.Shape}
		st.Stride = make([]int64, len(tn.Shape))
		for i, s := len(tn.Shape)-1, int64(1); i >= 0; i-- {
			st.Stride[i], s = s, s*tn.Shape[i]
		}
		entries = append(entries, st)
	}
	for _, tn := range src.Tensors {
		if layers > 0 && strings.HasPrefix(tn.Name, "blocks.") && !strings.HasPrefix(tn.Name, "blocks.0.") {
			continue
		}
		key := fmt.Sprint(len(storages))
		if tn.Name == "head.weight" {
			key = keys["emb.weight"]
		} else {
			b, err := tn.Bytes()
			must(t, err)
			storages[key] = b
		}
		keys[tn.Name] = key
		add(tn.Name, key, tn)
	}
	for l := 1; l < layers; l++ {
		for _, tn := range src.Tensors {
			if rest, ok := strings.CutPrefix(tn.Name, "blocks.0."); ok {
				add(fmt.Sprintf("blocks.%d.%s", l, rest), keys[tn.Name], tn)
			}
		}
	}
	return hostile.Checkpoint(hostile.StateDict(entries...), storages)
}

// emptyTensorsST is a LoRA-named .st of n empty float32 tensors.
func emptyTensorsST(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	must(t, safetensors.Write(&buf, emptySource(t, n), nil))
	return buf.Bytes()
}

// emptyTensorsRKV is an .rkv of n empty float32 tensors.
func emptyTensorsRKV(t testing.TB, dir string, n int) []byte {
	path := filepath.Join(dir, "scratch.rkv")
	must(t, serialize.WriteFile(context.Background(), path, emptySource(t, n), false, nil))
	b, err := os.ReadFile(path)
	must(t, err)
	must(t, os.Remove(path))
	return b
}

func emptySource(t testing.TB, n int) *format.Source {
	src := &format.Source{}
	for i := range n {
		tn, err := format.NewTensor(fmt.Sprintf("blocks.%d.att.key.lora_A.%d", i%100, i), format.F32, []int64{0}, format.BytesOpener(nil))
		must(t, err)
		src.Tensors = append(src.Tensors, tn)
	}
	return src
}

// longNameLoRA is a LoRA .st with one unpaired lora_A tensor whose name is
// n bytes long, which the adapter reader names in its error whole.
func longNameLoRA(t testing.TB, n int) []byte {
	name := "blocks.0.att.key" + strings.Repeat("x", n) + ".lora_A.weight"
	tn, err := format.NewTensor(name, format.F16, []int64{4, 4}, format.BytesOpener(make([]byte, 32)))
	must(t, err)
	var buf bytes.Buffer
	must(t, safetensors.Write(&buf, &format.Source{Tensors: []*format.Tensor{tn}}, nil))
	return buf.Bytes()
}

// longNameST is a .st whose one tensor has an n-byte name and a dtype no
// reader knows.
func longNameST(n int) []byte {
	h := fmt.Sprintf(`{%q:{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}`, strings.Repeat("n", n))
	for len(h)%8 != 0 {
		h += " "
	}
	b := make([]byte, 8, 8+len(h)+4)
	for i := range 8 {
		b[i] = byte(uint64(len(h)) >> (8 * i))
	}
	return append(append(b, h...), 0, 0, 0, 0)
}

// BenchmarkHostile runs the real binary on the hostile inputs that used to
// take minutes or gigabytes, and reports each one's wall and CPU time and
// peak memory per input byte.
func BenchmarkHostile(b *testing.B) {
	dir := b.TempDir()
	inputs := []struct {
		name string
		data func() []byte
		args []string
	}{
		{"1M empty tensors .st convert", func() []byte { return emptyTensorsST(b, 1_000_000) }, []string{"convert", "IN", "OUT.st"}},
		{"131k empty tensors .rkv convert", func() []byte { return emptyTensorsRKV(b, dir, 131_072) }, []string{"convert", "IN", "OUT.st"}},
		{"60 MB long-list pickle inspect", func() []byte { return hostile.Checkpoint(hostile.LongList(60<<20), nil) }, []string{"inspect", "IN"}},
		{"REDUCE on 4000 refs to 1 MiB inspect", func() []byte { return hostile.Checkpoint(hostile.ReduceOnList(1<<20, 4000), nil) }, []string{"inspect", "IN"}},
	}
	for i, in := range inputs {
		path := filepath.Join(dir, fmt.Sprint("in", i))
		must(b, os.WriteFile(path, in.data(), 0o644))
		fi, _ := os.Stat(path)
		b.Run(in.name, func(b *testing.B) {
			for range b.N {
				out := filepath.Join(dir, "out.st")
				os.Remove(out)
				args := make([]string, len(in.args))
				for j, a := range in.args {
					args[j] = strings.Replace(strings.Replace(a, "IN", path, 1), "OUT.st", out, 1)
				}
				start := time.Now()
				r := runChild(b, args...)
				b.ReportMetric(time.Since(start).Seconds(), "wall-s")
				b.ReportMetric(r.cpu.Seconds(), "cpu-s")
				b.ReportMetric(float64(r.peak)/1e6, "peak-MB")
				b.ReportMetric(float64(r.peak)/float64(fi.Size()), "peak-bytes/input-byte")
			}
			b.ReportMetric(float64(fi.Size())/1e6, "input-MB")
		})
	}
}
