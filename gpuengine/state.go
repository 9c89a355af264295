package gpuengine

import (
	"fmt"
	"runtime"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkvkit/rwkvkit/engine"
)

// A State is one sequence's recurrent memory, a slot of the engine's state
// buffers on the GPU. Its slot returns to the engine when the State is
// garbage.
type State struct {
	e    *Engine
	slot int
}

var _ engine.State = (*State)(nil)

// NewState returns the initial state (zeros; v4's pp at −1e30).
func (e *Engine) NewState() (engine.State, error) {
	unlock, err := e.take()
	if err != nil {
		return nil, err
	}
	defer unlock()
	slot, err := e.takeSlot()
	if err != nil {
		return nil, err
	}
	if err := e.writeSlot(slot, engine.NewSnapshot(e.info)); err != nil {
		e.putSlot(slot)
		return nil, err
	}
	s := &State{e: e, slot: slot}
	runtime.AddCleanup(s, e.putSlot, slot)
	return s, nil
}

func (e *Engine) takeSlot() (int, error) {
	e.slotMu.Lock()
	n := len(e.free)
	if n > 0 {
		slot := e.free[n-1]
		e.free = e.free[:n-1]
		e.slotMu.Unlock()
		return slot, nil
	}
	e.slotMu.Unlock()
	if err := e.growStates(2 * e.slots); err != nil {
		return 0, err
	}
	return e.takeSlot()
}

func (e *Engine) putSlot(slot int) {
	e.slotMu.Lock()
	defer e.slotMu.Unlock()
	e.free = append(e.free, slot)
}

// pageRange returns the first slot of a page and the most it holds.
func (e *Engine) pageRange(page int) (int, int) { return page * e.pageSlots, e.pageSlots }

// slotAt returns the buffer of layer l holding slot, and the slot's byte
// offset in it.
func (e *Engine) slotAt(slot, l int) (*wgpu.Buffer, uint64) {
	return e.states[slot/e.pageSlots][l], uint64(slot%e.pageSlots) * uint64(e.slotStride) * 4
}

// growStates makes room for n states (a first page that doubles up to
// pageSlots, then more pages), keeping the states there are, and rebinds
// or rebuilds the program that uses them.
func (e *Engine) growStates(n int) error {
	pages := len(e.states)
	if n <= e.pageSlots {
		if err := e.resizePage0(n); err != nil {
			return err
		}
	} else {
		if err := e.resizePage0(e.pageSlots); err != nil {
			return err
		}
		n = (n + e.pageSlots - 1) / e.pageSlots * e.pageSlots
		for len(e.states)*e.pageSlots < n {
			page, err := e.newPage(e.pageSlots, len(e.states))
			if err != nil {
				return err
			}
			e.states = append(e.states, page)
		}
	}
	e.slotMu.Lock()
	for s := n - 1; s >= e.slots; s-- {
		e.free = append(e.free, s)
	}
	e.slotMu.Unlock()
	e.slots = n
	switch {
	case e.uniform == nil: // still loading: the program is made next
		return nil
	case len(e.states) != pages:
		return e.rebuild()
	}
	return e.bindAll(true)
}

func (e *Engine) newPage(slots, page int) ([]*wgpu.Buffer, error) {
	bufs := make([]*wgpu.Buffer, e.info.Layers)
	for l := range bufs {
		b, err := e.d.Storage(fmt.Sprintf("states %d.%d", page, l), uint64(slots)*uint64(e.slotStride)*4)
		if err != nil {
			for _, x := range bufs[:l] {
				x.Release()
			}
			return nil, fmt.Errorf("gpuengine: %d states: %w", slots, err)
		}
		bufs[l] = b
	}
	return bufs, nil
}

// resizePage0 makes the first page hold n slots, copying the old ones.
func (e *Engine) resizePage0(n int) error {
	old := 0
	if len(e.states) > 0 {
		old = min(e.slots, e.pageSlots)
	}
	if old >= n {
		return nil
	}
	bufs, err := e.newPage(n, 0)
	if err != nil {
		return err
	}
	if old > 0 {
		err := e.d.Submit(func(enc *wgpu.CommandEncoder) error {
			for l, b := range bufs {
				if err := enc.CopyBufferToBuffer(e.states[0][l], 0, b, 0, uint64(old)*uint64(e.slotStride)*4); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return e.fail(fmt.Errorf("gpuengine: growing the states: %w", err))
		}
		for _, b := range e.states[0] {
			b.Release()
		}
		e.states[0] = bufs
	} else {
		e.states = append(e.states, bufs)
	}
	return nil
}

// writeSlot uploads snapshot s into slot.
func (e *Engine) writeSlot(slot int, s *engine.Snapshot) error {
	for l := range e.info.Layers {
		b, off := e.slotAt(slot, l)
		if err := e.d.Write(b, off, f32Bytes(e.deviceLayer(s.Layer(l)))); err != nil {
			return e.fail(fmt.Errorf("gpuengine: writing a state: %w", err))
		}
	}
	return nil
}

// Snapshot copies the state to the host.
func (s *State) Snapshot() (*engine.Snapshot, error) {
	e := s.e
	unlock, err := e.take()
	if err != nil {
		return nil, err
	}
	defer unlock()
	snap := engine.NewSnapshot(e.info)
	layer := uint64(e.slotStride) * 4
	size := layer * uint64(e.info.Layers)
	if e.snapDown == nil {
		if e.snapDown, err = e.d.NewDownload(size); err != nil {
			return nil, err
		}
	}
	if err := e.snapDown.Unmap(); err != nil {
		return nil, e.fail(err)
	}
	err = e.d.Submit(func(enc *wgpu.CommandEncoder) error {
		for l := range e.info.Layers {
			b, off := e.slotAt(s.slot, l)
			if err := enc.CopyBufferToBuffer(b, off, e.snapDown.Buffer(), uint64(l)*layer, layer); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, e.fail(fmt.Errorf("gpuengine: reading a state: %w", err))
	}
	b, err := e.snapDown.Bytes()
	if err != nil {
		return nil, e.fail(fmt.Errorf("gpuengine: reading a state: %w", err))
	}
	for i := range snap.Data {
		snap.Data[i] = f32At(b, i)
	}
	for l := range e.info.Layers {
		e.hostLayer(snap.Layer(l))
	}
	runtime.KeepAlive(s)
	return snap, nil
}

// Restore replaces the state with snap, which must fit the model.
func (s *State) Restore(snap *engine.Snapshot) error {
	e := s.e
	if err := snap.Fits(e.info); err != nil {
		return fmt.Errorf("gpuengine: %w", err)
	}
	unlock, err := e.take()
	if err != nil {
		return err
	}
	defer unlock()
	err = e.writeSlot(s.slot, snap)
	runtime.KeepAlive(s)
	return err
}
