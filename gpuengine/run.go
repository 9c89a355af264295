package gpuengine

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/engine"
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
	seen := map[*State]bool{}
	states := make([]*State, len(batch))
	for i := range batch {
		sq := &batch[i]
		if len(sq.Tokens) == 0 {
			return fmt.Errorf("gpuengine: sequence %d has no tokens", i)
		}
		for p, t := range sq.Tokens {
			if t < 0 || t >= V {
				return fmt.Errorf("gpuengine: sequence %d: %w: token %d at position %d (vocabulary %d)", i, engine.ErrToken, t, p, V)
			}
		}
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
	var outs []outRow
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		sh, o := e.planPass(batch, states, pos, outs[:0])
		outs = o
		if sh.T == 0 {
			break
		}
		if err := e.runPass(sh, batch, outs); err != nil {
			return e.fail(err)
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
		switch {
		case sq.Output == engine.OutputAll:
			n = min(n, e.rcap-sh.R)
		case sq.Output == engine.OutputLast && n == rem && sh.R == e.rcap:
			n = rem - 1 // leave the last token, whose logits do not fit, for the next pass
		}
		if n == 0 {
			break
		}
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
	return sh, outs
}

// runPass uploads the pass description, records and submits the program
// and reads back the logits of its output rows.
func (e *Engine) runPass(sh shape, batch []engine.Sequence, outs []outRow) error {
	start := time.Now()
	_, q := e.d.WGPU()
	if err := q.WriteBuffer(e.passBuf, 0, e.pass); err != nil {
		return fmt.Errorf("gpuengine: %w", err)
	}
	V := e.info.Vocab
	n := uint64(sh.R * V * 4)
	if n > 0 {
		if err := e.down.Unmap(); err != nil {
			return err
		}
	}
	err := e.d.Submit(func(enc *wgpu.CommandEncoder) error {
		if err := e.record(enc, sh); err != nil {
			return err
		}
		if n > 0 {
			return enc.CopyBufferToBuffer(e.act, uint64(4*e.logits.off), e.down.Buffer(), 0, n)
		}
		return nil
	})
	e.stats.Record = time.Since(start)
	if err != nil {
		return fmt.Errorf("gpuengine: %w", err)
	}
	if n == 0 {
		return nil
	}
	if err := e.down.MapPrefix(n); err != nil {
		return err
	}
	b, err := e.down.Bytes()
	if err != nil {
		return fmt.Errorf("gpuengine: reading logits: %w", err)
	}
	for r, o := range outs {
		dst := batch[o.seq].Logits[o.row*V : (o.row+1)*V]
		src := b[r*V*4:]
		for c := range dst {
			dst[c] = f32At(src, c)
		}
	}
	return nil
}
