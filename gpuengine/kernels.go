package gpuengine

import (
	"embed"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/quantize"
)

//go:embed wgsl/*.wgsl
var wgslFS embed.FS

func wgsl(name string) string {
	b, err := wgslFS.ReadFile("wgsl/" + name)
	if err != nil {
		panic("gpuengine: missing kernel source " + name)
	}
	return string(b)
}

// maxJobs is the number of matrices one linear dispatch can multiply.
const maxJobs = 8

// compile builds entry of the kernel made of the given WGSL files, after the
// shared declarations and the constants, which are the model's embedding and
// extra.
func (e *Engine) compile(entry string, extra map[string]int, files ...string) (*gpu.Kernel, error) {
	consts := map[string]int{
		"C": e.info.Embed, "MAXJOBS": maxJobs, "WG": e.lnThreads(), "LANES": e.lanes(), "MV_ROWS": mvRows, "KIND": anyKind,
	}
	for k, v := range extra {
		consts[k] = v
	}
	names := make([]string, 0, len(consts))
	for k := range consts {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "const %s: u32 = %du;\n", k, consts[k])
	}
	for _, t := range []struct {
		name string
		book *[16]float32
	}{{"NF4", &quantize.NF4Table}, {"SF4", &quantize.SF4Table}} {
		fmt.Fprintf(&b, "const %s = array<f32, 16>(", t.name)
		for i, v := range t.book {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32))
		}
		b.WriteString(");\n")
	}
	b.WriteString(wgsl("common.wgsl"))
	for _, f := range files {
		b.WriteString(wgsl(f))
	}
	key := strings.Join(files, "+") + "." + entry + fmt.Sprint(extra)
	if k, ok := e.kernels[key]; ok {
		return k, nil
	}
	k, err := e.d.NewKernel(strings.Join(files, "+"), b.String(), entry)
	if err != nil {
		return nil, fmt.Errorf("gpuengine: %w", err)
	}
	e.kernels[key] = k
	return k, nil
}

// lnThreads is the workgroup size of the LayerNorm kernels: 256, or the
// next power of two at least C when that is less (threads past C idle, and
// software adapters pay for every thread).
func (e *Engine) lnThreads() int {
	n := 1
	for n < e.info.Embed && n < 256 {
		n *= 2
	}
	return n
}

// lanes is the number of threads the matrix-vector kernel gives a quad of
// rows: mvLanes, or C/8 when narrower models have fewer columns to share out.
func (e *Engine) lanes() int { return e.lanesUpTo(mvLanes) }

func (e *Engine) lanesUpTo(most int) int {
	n := 4
	for n < most && 8*n < e.info.Embed {
		n *= 2
	}
	return n
}

// mvGeometry is the lanes a quad of rows and the rows a workgroup of a
// matrix-vector dispatch: mvLanes and mvRows, or (wide) twice the lanes and
// half the rows. On an H200 the wide geometry made 7B Int8 decode 2%
// faster for dispatches of Int8 products alone (193.4–193.6 → 196.8–198.3
// tokens/s, 1.5B 439–448 → 451–454); NF4 lost 2% so in matvec, and gained
// 3% in matvec1 (194.8–196.8 → 201.9–203.3, every dispatch of the model
// wide), so matvec1 takes it for dispatches with 4-bit products. Float16
// gained nothing; dispatches of Int8 and float16 products together are not
// measured wide.
func (e *Engine) mvGeometry(wide bool) (lanes, rows int) {
	if wide && mvRows >= 8 {
		return e.lanesUpTo(2 * mvLanes), mvRows / 2
	}
	return e.lanes(), mvRows
}
