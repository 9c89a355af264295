package gpuengine

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
)

// Run feeds every sequence its tokens, in passes of at most Options.Chunk
// tokens, and sets its logits.
func (e *Engine) Run(ctx context.Context, batch []engine.Sequence) error {
	unlock, err := e.take()
	if err != nil {
		return err
	}
	defer unlock()
	V := e.info.Vocab
	if err := engine.CheckBatch(batch, V); err != nil {
		return fmt.Errorf("gpuengine: %w", err)
	}
	seen := map[*State]bool{}
	states := make([]*State, len(batch))
	for i := range batch {
		sq := &batch[i]
		s, ok := sq.State.(*State)
		if !ok || s == nil || s.e != e {
			return fmt.Errorf("gpuengine: sequence %d: %w: the state was not made by this engine", i, engine.ErrStateMismatch)
		}
		if seen[s] {
			return fmt.Errorf("gpuengine: sequence %d: %w: the state is used twice in the batch", i, engine.ErrStateMismatch)
		}
		seen[s] = true
		states[i] = s
		n := 0
		switch sq.Output {
		case engine.OutputAll:
			n = len(sq.Tokens) * V
		case engine.OutputLast:
			n = V
		}
		if cap(sq.Logits) >= n {
			sq.Logits = sq.Logits[:n]
		} else {
			sq.Logits = make([]float32, n)
		}
	}
	pos := make([]int, len(batch))
	// A pass's output rows go through the head and to the host in chunks of
	// at most rcap (chunkRows), which take the download buffers in turn: the
	// logits of one chunk are copied out while the GPU works on the later
	// ones, of this pass or the next.
	held := make([][]outRow, len(e.down)) // the rows in each download buffer
	pending := make([]bool, len(e.down))
	// A mapping left pending would hold the garbage collector (package gpu)
	// and the buffer: on an early return, wait for it.
	defer func() {
		for i, p := range pending {
			if p {
				e.down[i].Bytes()
			}
		}
	}()
	read := func(i int) error {
		if !pending[i] {
			return nil
		}
		pending[i] = false
		if err := e.readRows(i, batch, held[i]); err != nil {
			return e.fail(err)
		}
		return nil
	}
	var outs []outRow
	next := 0
	e.stats = Stats{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var sh shape
		sh, outs = e.planPass(batch, states, pos, outs[:0])
		if sh.T == 0 {
			break
		}
		e.stats.Dispatches, e.stats.Record = 0, 0
		first := 0
		for _, n := range e.chunks(sh.R) {
			rows := outs[first : first+n]
			if len(rows) > 0 {
				if err := read(next); err != nil {
					return err
				}
			}
			if err := e.runChunk(sh, first, len(rows), next); err != nil {
				return e.fail(err)
			}
			if len(rows) > 0 {
				held[next], pending[next] = append(held[next][:0], rows...), true
				next = (next + 1) % len(e.down)
			}
			first += n
		}
	}
	// The oldest chunk first, which is ready first.
	for d := range e.down {
		if err := read((next + d) % len(e.down)); err != nil {
			return err
		}
	}
	runtime.KeepAlive(states)
	return nil
}

// An outRow says where an output row of a pass goes: sequence seq's
// logits at row.
type outRow struct{ seq, row int }

// planPass writes the description of the next pass into e.pass: the next
// tokens of every sequence with some left, as many as the pass holds, in
// batch order, and the rows whose logits are wanted. It advances pos.
func (e *Engine) planPass(batch []engine.Sequence, states []*State, pos []int, outs []outRow) (shape, []outRow) {
	var sh shape
	for i := range batch {
		sq := &batch[i]
		rem := len(sq.Tokens) - pos[i]
		if rem == 0 {
			continue
		}
		n := min(rem, e.tcap-sh.T)
		base := 4 + 2*e.tcap + 4*sh.S
		e.putWord(base, states[i].slot)
		e.putWord(base+1, sh.T)
		e.putWord(base+2, n)
		for k := range n {
			e.putWord(4+sh.T+k, sq.Tokens[pos[i]+k])
			e.putWord(4+e.tcap+sh.T+k, sh.S)
		}
		for k := range n {
			p := pos[i] + k
			if sq.Output == engine.OutputAll || (sq.Output == engine.OutputLast && p == len(sq.Tokens)-1) {
				e.putWord(4+6*e.tcap+sh.R, sh.T+k)
				row := 0
				if sq.Output == engine.OutputAll {
					row = p
				}
				outs = append(outs, outRow{i, row})
				sh.R++
			}
		}
		pos[i] += n
		sh.T += n
		sh.S++
		if sh.T == e.tcap {
			break
		}
	}
	e.putWord(0, sh.T)
	e.putWord(1, sh.S)
	e.putWord(2, sh.R)
	e.putWord(3, e.tcap)
	if e.info.Version == format.V7 && longSegments(sh) {
		e.planSpans(&sh)
	}
	return sh, outs
}

// halfChunkRows is the fewest output rows the last chunk of a pass must
// have to go through the head in two halves: the host then copies the
// first half's logits out while the GPU computes the second's, and only the
// second half's copy is left when the GPU is done. On an H200, a batch of
// 256 one-token sequences (64 MiB of logits a step) went from 6,087–6,099
// to 6,496 tokens/s at 1.5B and from 1,686–1,694 to 1,718–1,719 at 7B in
// halves; 0.1B from 26,305–28,645 to 30,728 with LogitRows 128, which makes
// the same chunks, and chunks of 64 gained less. Chunks of the default
// 128 rows (logitRows) never reach it; an Options.LogitRows of 256 or more
// does.
var halfChunkRows = 256

// chunks is the rows of each chunk in which a pass of R output rows goes
// through the head, in order: chunks of rcap, the last cut in halves where
// it has halfChunkRows. A pass with no output rows still has one chunk,
// which runs the pass.
func (e *Engine) chunks(R int) []int {
	var c []int
	for R > e.rcap {
		c = append(c, e.rcap)
		R -= e.rcap
	}
	if R >= halfChunkRows && R > 1 {
		return append(c, ceilDiv(R, 2), R/2)
	}
	return append(c, R)
}

// runChunk records and submits the chunk of the pass planned whose rows
// are its output rows first…first+rows−1: for the first chunk, the pass
// description and the whole program; for the others, the program's head,
// once their rows have taken the place of the last chunk's in the pass
// description (the queue runs the writes and the work in the order they
// are given). The chunk's logits go to download buffer i (written by the
// head, or copied there after it), whose mapping it requests.
func (e *Engine) runChunk(sh shape, first, rows, i int) error {
	start := time.Now()
	ops := e.prog
	var err error
	if first == 0 {
		e.putWord(2, rows)
		err = e.d.Write(e.passBuf, 0, e.pass)
	} else {
		ops = e.heads()
		if err = e.d.Write(e.passBuf, 8, binary.LittleEndian.AppendUint32(nil, uint32(rows))); err == nil {
			at := 4 * (4 + 6*e.tcap)
			err = e.d.Write(e.passBuf, uint64(at), e.pass[at+4*first:at+4*(first+rows)])
		}
	}
	if err != nil {
		return fmt.Errorf("gpuengine: %w", err)
	}
	n := uint64(rows * e.info.Vocab * 4)
	down := e.down[i]
	if n > 0 {
		if err := down.Unmap(); err != nil {
			return err
		}
	}
	sh.R = rows
	err = e.record(ops, sh, i, func(enc *wgpu.CommandEncoder) error {
		if n > 0 && !e.direct {
			return enc.CopyBufferToBuffer(e.logitBuf, 0, down.Buffer(), 0, n)
		}
		return nil
	})
	e.stats.Record += time.Since(start)
	if err != nil {
		return fmt.Errorf("gpuengine: %w", err)
	}
	if n == 0 {
		return nil
	}
	return down.MapPrefix(n)
}

// readRows waits for the logits in download buffer i and copies them into
// the sequences.
func (e *Engine) readRows(i int, batch []engine.Sequence, outs []outRow) error {
	start := time.Now()
	b, err := e.down[i].Bytes()
	if err != nil {
		return fmt.Errorf("gpuengine: reading logits: %w", err)
	}
	mapped := time.Now()
	copyRows(b, batch, outs, e.info.Vocab)
	e.stats.Wait += mapped.Sub(start)
	e.stats.Copy += time.Since(mapped)
	return nil
}

// copyRows copies the logits rows of a pass from the mapped download
// buffer b into the sequences, spread over cores when they are many: the
// rows of a batch or a verify pass are tens of megabytes, and a core reads
// that memory at 3–4 GB/s (an H200's host, Vulkan), so that one step of a
// batch of 256 spent 18 ms of CPU time copying out its 64 MB.
func copyRows(b []byte, batch []engine.Sequence, outs []outRow, V int) {
	one := func(r int) {
		o := outs[r]
		dst := batch[o.seq].Logits[o.row*V : (o.row+1)*V]
		src := b[r*V*4 : (r+1)*V*4]
		if hostLittleEndian {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*V), src)
			return
		}
		for c := range dst {
			dst[c] = f32At(src, c)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), copyWorkers, len(outs)*V/(1<<18)+1)
	if workers <= 1 {
		for r := range outs {
			one(r)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := w; r < len(outs); r += workers {
				one(r)
			}
		}()
	}
	wg.Wait()
}

// copyWorkers bounds the goroutines copyRows takes (a variable for the
// benchmarks).
var copyWorkers = 64

var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
