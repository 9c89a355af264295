package gpuengine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/quantize"
)

// Options tune an engine; the zero value is the default.
type Options struct {
	// Chunk is the most tokens one pass feeds, all sequences of a batch
	// together. Longer inputs take several passes. The default feeds 2048,
	// 1024 or 512 tokens, the most whose activations fit one binding (on an
	// H200, 2048 at every shape up to 7B; longer passes fill the GPU
	// better).
	Chunk int
	// LogitRows is the most output rows whose logits the GPU holds at once
	// (0: 128, or fewer where one binding holds fewer, and at most Chunk):
	// a pass with more computes and sends them in chunks of that many, each
	// copied out on the host while the GPU computes the next (and a pass of
	// 256 rows or more that fit one chunk, in two halves). Their two
	// download buffers take 2 × LogitRows × vocabulary × 4 bytes of host
	// memory, which the head writes where the device allows it; elsewhere
	// the logits take as much again on the device, copied out after it.
	LogitRows int
	// Plan quantizes the float matrices it names on the GPU while the
	// model loads (web-rwkv's quantization at load); nil loads the file's
	// weights as they are.
	Plan *quantize.Plan
	// MaxMemory bounds the bytes the engine allocates on the device (0: no
	// bound beyond the device's own limits). WebGPU does not tell how much
	// memory a device has; a model too large for it fails when a buffer is
	// created, before anything is uploaded.
	MaxMemory int64
	// MaxBinding lowers the size of a weight arena and of a buffer of
	// states below the device's binding limit (0: the limit), which splits
	// weights into more arenas, large matrices into more pieces and states
	// into more pages.
	MaxBinding int64
}

// The default pass: the longest of maxAutoChunk, maxAutoChunk/2 …
// minAutoChunk tokens whose activations fit one binding.
const maxAutoChunk, minAutoChunk = 2048, 512

// logitRows is the default of Options.LogitRows. On an H200, a verify pass
// of 2048 tokens (every position's logits) ran at 1.5B in chunks of 512
// rows at 7,578–8,020 tokens/s, of 256 at 8,652–8,987, of 128 at
// 8,959–8,966 (7B: 2,018–2,027, 2,026–2,034, 2,034): the smaller the
// chunk, the less of the host's copying is left once the GPU is done, and
// the GPU waited less for its writes into host memory as well.
const logitRows = 128

// downloadBuffers is the number of download buffers a pass's chunks of
// logits take in turn: with two, the host copies a chunk's logits out while
// the GPU computes the next, and the chunk after that is submitted once the
// copy is done (a variable for the benchmarks to try more).
var downloadBuffers = 2

// ErrTooLarge is wrapped by the error for a model that does not fit the
// device (or Options.MaxMemory).
var ErrTooLarge = errors.New("model does not fit the device")

// An Engine is a model loaded on a GPU. It implements engine.Engine; its
// methods may be called from several goroutines (Run calls are serialised).
type Engine struct {
	d    *gpu.Device
	info format.ModelInfo
	tcap int // tokens per pass
	rcap int // output rows whose logits the GPU holds at once
	tile int // 1 + the matrix-matrix tile every dispatch takes (tests); 0: chosen by size

	autoChunk bool   // tcap is the default: the longest pass whose activations fit one binding
	scratch   region // partial sums of split products (width 0: none in this build)
	spanLen   int    // tokens of a span of RWKV-7's recurrence (0: a segment is one span)

	mu       sync.Mutex
	kernels  map[string]*gpu.Kernel
	arenas   []*wgpu.Buffer
	vecs     map[string]vector
	mats     map[string]*matrix
	actSize  int // floats
	act      *wgpu.Buffer
	logitBuf *wgpu.Buffer // rcap rows of logits (nil when direct)
	noLogits *wgpu.Buffer // bound for logits by products that write none (when direct)
	passBuf  *wgpu.Buffer
	pass     []byte // the pass description being built
	uniform  *wgpu.Buffer
	prog     []*op
	logits   region
	down     []*gpu.Staging // logits of chunks in turn, each read while later ones run
	direct   bool           // the head writes the logits into down itself

	// States: pages of at most pageSlots slots, each a buffer per layer of
	// slots × slotStride floats; slot s is slot s − page·pageSlots of page
	// s/pageSlots. Kernels that bind states run once per page.
	states     [][]*wgpu.Buffer
	slotStride int
	pageSlots  int
	slots      int
	slotMu     sync.Mutex
	free       []int
	snapDown   *gpu.Staging

	limits limits
	broken error // set when the device failed; every later call returns it
	closed bool
	stats  Stats
}

// Stats describe what the last pass an engine ran cost, and the last Run's
// way of the logits to the host.
type Stats struct {
	Dispatches int           // dispatches recorded in the last pass
	Record     time.Duration // CPU time recording and submitting them
	Wait       time.Duration // time the last Run waited for the GPU's logits
	Copy       time.Duration // time the last Run spent copying logits out
}

// Stats returns what the last pass cost and how the last Run's logits
// reached the host.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

var _ engine.Engine = (*Engine)(nil)

// Load reads the model in src onto d. Errors name the tensor at fault; a
// model that does not fit says so, with the sizes, before anything is
// uploaded. src may be closed once Load returns.
func Load(ctx context.Context, d *gpu.Device, src *format.Source, opt *Options) (*Engine, error) {
	var o Options
	if opt != nil {
		o = *opt
	}
	info, err := format.Detect(src)
	if err != nil {
		return nil, fmt.Errorf("gpuengine: %w", err)
	}
	if err := checkInfo(info); err != nil {
		return nil, err
	}
	// newEngine makes nothing on the device yet: it refuses a model whose
	// kernels the device cannot run before anything is read or compiled.
	e, err := newEngine(d, info, o)
	if err != nil {
		return nil, err
	}
	norm, err := format.WebRWKV(src)
	if err != nil {
		return nil, fmt.Errorf("gpuengine: %w", err)
	}
	if o.Plan != nil {
		q, err := quantize.NewGPU(d, quantize.GPUOptions{})
		if err != nil {
			return nil, err
		}
		defer q.Close()
		if norm, err = quantize.Apply(ctx, norm, o.Plan, q); err != nil {
			return nil, err
		}
	}
	// The device is taken per step, not for the whole load: reading a
	// tensor may quantize it on the same device.
	ok := false
	defer func() {
		if !ok {
			d.Lock()
			e.release()
			d.Unlock()
		}
	}()
	specs := e.specs()
	dtypes := make([]format.DType, len(specs))
	tensors := make([]*format.Tensor, len(specs))
	for i, s := range specs {
		t := norm.Lookup(s.name)
		if t == nil {
			return nil, fmt.Errorf("gpuengine: missing tensor %q", s.name)
		}
		if err := checkShape(t, s, info.Heads); err != nil {
			return nil, fmt.Errorf("gpuengine: tensor %q: %w", s.name, err)
		}
		dtypes[i], tensors[i] = t.DType, t
	}
	same := sharedSpecs(specs, tensors)
	if err := e.locked(func() error { return e.plan(specs, dtypes, same) }); err != nil {
		return nil, err
	}
	for i, s := range specs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if same[i] >= 0 {
			continue // uploaded with the tensor it shares
		}
		if err := e.load(tensors[i], s, dtypes[i]); err != nil {
			// A reader's error names its file and tensor already.
			return nil, fmt.Errorf("gpuengine: %w", format.TensorErr(s.name, err))
		}
	}
	if err := e.locked(e.finishProgram); err != nil {
		return nil, err
	}
	ok = true
	return e, nil
}

// Supported reports, as an error saying why not, whether the engine runs a
// model described by info.
func Supported(info format.ModelInfo) error { return checkInfo(info) }

func checkInfo(info format.ModelInfo) error {
	switch info.Version {
	case format.V4, format.V5_0, format.V5_1, format.V5_2, format.V6, format.V7:
	default:
		return fmt.Errorf("gpuengine: RWKV %s is not supported on the GPU", info.Version)
	}
	if info.Version != format.V4 && (info.Heads <= 0 || info.Heads*info.HeadSize != info.Embed) {
		return fmt.Errorf("gpuengine: %d heads of size %d do not make the embedding %d", info.Heads, info.HeadSize, info.Embed)
	}
	if info.Embed%32 != 0 || info.FFN%32 != 0 {
		return fmt.Errorf("gpuengine: embedding %d and FFN %d must be multiples of 32 on the GPU", info.Embed, info.FFN)
	}
	if info.Version == format.V7 && (info.HeadSize%16 != 0 || info.HeadSize > 64) {
		return fmt.Errorf("gpuengine: head size %d: the RWKV-7 recurrence on the GPU needs a multiple of 16 up to 64", info.HeadSize)
	}
	return nil
}

func checkShape(t *format.Tensor, s tensorSpec, heads int) error {
	if s.n > 0 {
		if t.Len() != int64(s.n) && !(s.perHead && t.Len() == int64(heads)) {
			return fmt.Errorf("shape %v, want %d values", t.Shape, s.n)
		}
		if !t.DType.Float() {
			return fmt.Errorf("%w: %v for a vector", errDType, t.DType)
		}
		return nil
	}
	switch {
	case s.stack > 0:
		if len(t.Shape) != 3 || t.Shape[0] != int64(s.stack) || t.Shape[1]*int64(s.stack) != int64(s.rows) || t.Shape[2] != int64(s.cols) {
			return fmt.Errorf("shape %v, want [%d %d %d]", t.Shape, s.stack, s.rows/s.stack, s.cols)
		}
		if !t.DType.Float() {
			return fmt.Errorf("%w: %v for a low-rank matrix", errDType, t.DType)
		}
	case len(t.Shape) != 2 || t.Shape[0] != int64(s.rows) || t.Shape[1] != int64(s.cols):
		return fmt.Errorf("shape %v, want [%d %d]", t.Shape, s.rows, s.cols)
	}
	if s.rows%4 != 0 || s.cols%32 != 0 {
		return fmt.Errorf("shape %v: the GPU needs rows a multiple of 4 and columns of 32", t.Shape)
	}
	_, err := storageOf(t.DType)
	return err
}

func newEngine(d *gpu.Device, info format.ModelInfo, o Options) (*Engine, error) {
	if err := checkKernels(deviceLimits(d), info); err != nil {
		return nil, err
	}
	e := &Engine{d: d, info: info, kernels: map[string]*gpu.Kernel{}, vecs: map[string]vector{}, mats: map[string]*matrix{}}
	e.direct = directLogits && d.StorageDownloads()
	e.tcap = o.Chunk
	if e.tcap <= 0 {
		e.tcap, e.autoChunk = maxAutoChunk, true
	}
	e.rcap = logitRows
	if o.LogitRows > 0 {
		e.rcap = o.LogitRows
	}
	e.rcap = min(e.rcap, e.tcap)
	binding := int64(d.MaxBinding())
	arena := binding
	if o.MaxBinding > 0 {
		arena = min(binding, o.MaxBinding&^255)
	}
	// The logits of a pass fill at most one binding.
	if rows := int(binding / int64(4*info.Vocab)); rows < e.rcap {
		e.rcap = max(rows, 1)
	}
	e.limits = limits{binding: binding, arena: arena, buffer: int64(d.Limits().MaxBufferSize), memory: o.MaxMemory}
	e.slotStride = 2*info.Embed + engine.NewSnapshot(format.ModelInfo{Version: info.Version, Layers: 1, Embed: info.Embed, Heads: info.Heads, HeadSize: info.HeadSize}).MemSize()
	e.pageSlots = int(arena / int64(4*e.slotStride))
	if e.pageSlots == 0 {
		return nil, fmt.Errorf("gpuengine: %w: one layer's state of %d bytes exceeds a binding of %d", ErrTooLarge, 4*e.slotStride, arena)
	}
	return e, nil
}

// directLogits lets the head write the logits into the download buffers
// where the device allows it (a variable for the tests and benchmarks of
// the other way: a storage buffer on the device, copied out after the
// head).
var directLogits = true

// limits are what buffers may be.
type limits struct{ binding, arena, buffer, memory int64 }

// initialSlots is the number of states the state buffers hold at first;
// they double when more are made.
const initialSlots = 4

// plan places the weights, builds the program and creates every buffer,
// refusing a model that does not fit before creating any. A matrix spec i
// with same[i] ≥ 0 (same may be nil) takes the place of spec same[i].
func (e *Engine) plan(specs []tensorSpec, dtypes []format.DType, same []int) error {
	a := &arenas{limit: e.limits.arena, group: -2}
	// A group's vectors share an arena, and the matrices placed with them
	// too where an arena holds them all.
	groupBytes, withVecs := map[int]int64{}, map[int]int64{}
	for i, s := range specs {
		switch {
		case s.n > 0:
			groupBytes[s.group] += alignUp(int64(4*s.n), align)
		case s.withVecs:
			kind, _ := storageOf(dtypes[i])
			n := s.rows * s.cols
			withVecs[s.group] += alignUp(alignUp(int64(codeBytes(kind, n)), align)+int64(paramBytes(kind, n)), align)
		}
	}
	for g, n := range withVecs {
		if groupBytes[g]+n <= a.limit {
			groupBytes[g] += n
		}
	}
	for i, s := range specs {
		if same != nil && same[i] >= 0 {
			e.mats[s.name] = e.mats[specs[same[i]].name]
			continue
		}
		if s.n > 0 {
			ar, off, err := a.reserve(int64(4*s.n), s.group, groupBytes[s.group])
			if err != nil {
				return fmt.Errorf("gpuengine: tensor %q: %w", s.name, err)
			}
			e.vecs[s.name] = vector{ar, int(off / 4)}
			continue
		}
		kind, _ := storageOf(dtypes[i])
		m := &matrix{kind: kind, rows: s.rows, cols: s.cols}
		if err := a.placeMatrix(m, s.group); err != nil {
			return fmt.Errorf("gpuengine: tensor %q: %w", s.name, err)
		}
		e.mats[s.name] = m
	}
	var weights int64
	for _, s := range a.sizes {
		weights += s
	}
	states := int64(e.info.Layers) * int64(min(initialSlots, e.pageSlots)*e.slotStride*4)
	// A first build with one page of states sizes the activations (and,
	// with the default chunk, halves the pass until they fit one binding
	// and the memory bound); the program is built again once the states
	// exist.
	e.states = make([][]*wgpu.Buffer, 1)
	var act, staging, total int64
	for {
		err := e.build()
		if err != nil {
			e.states = nil
			return err
		}
		e.releaseProgram()
		act = int64(4 * e.actSize)
		e.actSize = 0
		staging = int64(downloadBuffers) * int64(4*e.rcap*e.info.Vocab)
		if !e.direct {
			staging += int64(4 * e.rcap * e.info.Vocab) // the logits on the device, copied to the download buffers
		}
		total = weights + act + states + staging + int64(4*passWords(e.tcap))
		fits := act <= e.limits.binding && (e.limits.memory == 0 || total <= e.limits.memory)
		if fits || !e.autoChunk || e.tcap <= minAutoChunk {
			break
		}
		e.tcap /= 2
		e.rcap = min(e.rcap, e.tcap)
	}
	e.states = nil
	if act > e.limits.binding {
		return fmt.Errorf("gpuengine: %w: a pass of %d tokens needs %d bytes of activations, more than one binding of %d: use a smaller chunk",
			ErrTooLarge, e.tcap, act, e.limits.binding)
	}
	if e.limits.memory > 0 && total > e.limits.memory {
		return fmt.Errorf("gpuengine: %w: it needs %d bytes (weights %d, activations %d, states %d, staging %d), the limit is %d",
			ErrTooLarge, total, weights, act, states, staging, e.limits.memory)
	}
	if err := e.newArenas(a.sizes); err != nil {
		return fmt.Errorf("gpuengine: %w: weights of %d bytes in %d buffers: %v", ErrTooLarge, weights, len(a.sizes), err)
	}
	var err error
	if e.act, err = e.d.Storage("activations", uint64(act)); err != nil {
		return fmt.Errorf("gpuengine: %w: %v", ErrTooLarge, err)
	}
	logitBytes := uint64(4 * e.rcap * e.info.Vocab)
	if e.direct {
		e.noLogits, err = e.d.Storage("no logits", 16)
	} else {
		e.logitBuf, err = e.d.Storage("logits", logitBytes)
	}
	if err != nil {
		return fmt.Errorf("gpuengine: %w: %v", ErrTooLarge, err)
	}
	if e.passBuf, err = e.d.Storage("pass", uint64(4*passWords(e.tcap))); err != nil {
		return err
	}
	e.pass = make([]byte, 4*passWords(e.tcap))
	e.down = make([]*gpu.Staging, downloadBuffers)
	for i := range e.down {
		if e.direct {
			e.down[i], err = e.d.NewStorageDownload(logitBytes)
		} else {
			e.down[i], err = e.d.NewDownload(logitBytes)
		}
		if err != nil {
			return fmt.Errorf("gpuengine: %w: %v", ErrTooLarge, err)
		}
	}
	if err := e.growStates(min(initialSlots, e.pageSlots)); err != nil {
		return err
	}
	return e.build()
}

// load uploads tensor t of spec s, stored as dtype dt.
func (e *Engine) load(t *format.Tensor, s tensorSpec, dt format.DType) error {
	if s.n > 0 {
		v, err := e.vectorValues(t, s)
		if err != nil {
			return err
		}
		p := e.vecs[s.name]
		e.d.Lock()
		defer e.d.Unlock()
		return e.upload(p.arena, p.off, f32Bytes(v))
	}
	m := e.mats[s.name]
	rs, err := pieceRanges(t, dt, m)
	if err != nil {
		return err
	}
	if rs != nil {
		return e.stream(t, rs)
	}
	payload, err := t.Bytes()
	if err != nil {
		return err
	}
	e.d.Lock()
	defer e.d.Unlock()
	for _, p := range m.pieces {
		b, err := convertPiece(payload, dt, m, p)
		if err != nil {
			return err
		}
		if err := e.upload(p.arena, p.w, b); err != nil {
			return err
		}
	}
	return nil
}

// vectorValues reads a vector as float32, one value per channel, transformed
// as its version needs.
func (e *Engine) vectorValues(t *format.Tensor, s tensorSpec) ([]float32, error) {
	v, err := t.Float32()
	if err != nil {
		return nil, err
	}
	if len(v) != s.n { // one value per head
		per := s.n / len(v)
		w := make([]float32, s.n)
		for c := range w {
			w[c] = v[c/per]
		}
		v = w
	}
	if s.xform != nil {
		for i, x := range v {
			v[i] = float32(s.xform(float64(x)))
		}
	}
	return v, nil
}

// Info describes the model.
func (e *Engine) Info() format.ModelInfo { return e.info }

// Close releases the engine's device memory. The device stays open.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.d.Lock()
	defer e.d.Unlock()
	e.release()
	e.closed = true
	return nil
}

// release frees what the engine holds on the device; on a lost device,
// which nothing may call again, it only forgets it.
func (e *Engine) release() {
	e.releaseProgram()
	bufs := append(e.arenas, e.act, e.logitBuf, e.noLogits, e.passBuf)
	for _, p := range e.states {
		bufs = append(bufs, p...)
	}
	for _, b := range bufs {
		if b != nil && e.d.Err() == nil {
			b.Release()
		}
	}
	e.arenas, e.states, e.act, e.logitBuf, e.noLogits, e.passBuf = nil, nil, nil, nil, nil, nil
	for _, s := range append(e.down, e.snapDown) {
		if s != nil {
			s.Release()
		}
	}
	e.down, e.snapDown = nil, nil
	for _, k := range e.kernels {
		k.Release()
	}
	e.kernels = nil
}

// locked runs fn holding the device.
func (e *Engine) locked(fn func() error) error {
	e.d.Lock()
	defer e.d.Unlock()
	return fn()
}

// take locks the engine and the device for one operation, unless the
// engine cannot be used.
func (e *Engine) take() (unlock func(), err error) {
	e.mu.Lock()
	if err := e.usable(); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	e.d.Lock()
	return func() { e.d.Unlock(); e.mu.Unlock() }, nil
}

// usable reports why the engine cannot run, if it cannot: it is closed,
// or its device is lost (whoever met the loss).
func (e *Engine) usable() error {
	if e.closed {
		return errors.New("gpuengine: the engine is closed")
	}
	if e.broken == nil {
		if err := e.d.Err(); err != nil {
			e.broken = fmt.Errorf("gpuengine: %w", err)
		}
	}
	return e.broken
}

// fail records a device error: a lost device cannot be used again, and
// every later call returns the loss as the device recorded it.
func (e *Engine) fail(err error) error {
	if !errors.Is(err, gpu.ErrDeviceLost) {
		return err
	}
	if e.broken == nil {
		lost := e.d.Err()
		if lost == nil {
			lost = err
		}
		e.broken = fmt.Errorf("gpuengine: %w", lost)
	}
	return e.broken
}

// putWord sets word i of the pass description.
func (e *Engine) putWord(i, v int) { binary.LittleEndian.PutUint32(e.pass[4*i:], uint32(v)) }

// word is word i of the pass description.
func (e *Engine) word(i int) int { return int(binary.LittleEndian.Uint32(e.pass[4*i:])) }

func f32At(b []byte, i int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])) }
