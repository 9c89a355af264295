package runner

import (
	"fmt"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
)

// A State is the recurrent memory of one sequence, held in host memory in
// the engine-neutral layout of [engine.Snapshot]: per layer the previous
// token's normalised inputs of both halves (token shift) and the time-mix
// memory (v4: aa, bb, pp per channel; v5–v7: one N×N matrix per head).
type State struct {
	snap engine.Snapshot
}

var _ engine.State = (*State)(nil)

// ErrStateMismatch is wrapped when a state does not fit a model.
var ErrStateMismatch = engine.ErrStateMismatch

// NewState returns the initial state of a sequence (a *State): zeros,
// except v4's pp at −1e30. It never fails.
func (m *Model) NewState() (engine.State, error) { return m.newState(), nil }

func (m *Model) newState() *State { return &State{snap: *engine.NewSnapshot(m.info)} }

// Snapshot returns a copy of the state.
func (s *State) Snapshot() (*engine.Snapshot, error) { return s.snap.Clone(), nil }

// Restore replaces the state with a copy of x, which must have the same
// version and dimensions.
func (s *State) Restore(x *engine.Snapshot) error {
	if err := x.Fits(s.info()); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	copy(s.snap.Data, x.Data)
	return nil
}

// info is the model shape the state fits.
func (s *State) info() format.ModelInfo {
	return format.ModelInfo{Version: s.snap.Version, Layers: s.snap.Layers, Embed: s.snap.Embed, Heads: s.snap.Heads, HeadSize: s.snap.HeadSize}
}

// Clone returns an independent copy of s.
func (s *State) Clone() *State { return &State{snap: *s.snap.Clone()} }

// state returns s as a state of m.
func (m *Model) state(s engine.State) (*State, error) {
	rs, ok := s.(*State)
	if !ok || rs == nil {
		return nil, fmt.Errorf("runner: %w: a %T is not a state of the CPU engine", ErrStateMismatch, s)
	}
	if err := rs.snap.Fits(m.info); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	return rs, nil
}
