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

// growStates makes the state buffers hold n slots, keeping their contents,
// and rebinds the kernels that use them.
func (e *Engine) growStates(n int) error {
	size := uint64(n) * uint64(e.slotStride) * 4
	if int64(size) > e.limits.binding {
		return fmt.Errorf("gpuengine: %d states of %d bytes per layer exceed a binding of %d", n, e.slotStride*4, e.limits.binding)
	}
	bufs := make([]*wgpu.Buffer, e.info.Layers)
	for l := range bufs {
		b, err := e.d.Storage(fmt.Sprintf("states %d", l), size)
		if err != nil {
			for _, x := range bufs[:l] {
				x.Release()
			}
			return fmt.Errorf("gpuengine: %d states: %w", n, err)
		}
		bufs[l] = b
	}
	if e.slots > 0 {
		old := uint64(e.slots) * uint64(e.slotStride) * 4
		err := e.d.Submit(func(enc *wgpu.CommandEncoder) error {
			for l, b := range bufs {
				if err := enc.CopyBufferToBuffer(e.states[l], 0, b, 0, old); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return e.fail(fmt.Errorf("gpuengine: growing the states: %w", err))
		}
		for _, b := range e.states {
			b.Release()
		}
	}
	e.states = bufs
	e.slotMu.Lock()
	for s := n - 1; s >= e.slots; s-- {
		e.free = append(e.free, s)
	}
	e.slotMu.Unlock()
	e.slots = n
	if e.uniform != nil {
		return e.bindAll(true)
	}
	return nil
}

// writeSlot uploads snapshot s into slot.
func (e *Engine) writeSlot(slot int, s *engine.Snapshot) error {
	_, q := e.d.WGPU()
	for l := range e.info.Layers {
		if err := q.WriteBuffer(e.states[l], uint64(slot*e.slotStride*4), f32Bytes(s.Layer(l))); err != nil {
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
			if err := enc.CopyBufferToBuffer(e.states[l], uint64(s.slot)*layer, e.snapDown.Buffer(), uint64(l)*layer, layer); err != nil {
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
