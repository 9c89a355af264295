package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/statefile"
)

func registerState(f *pflag.FlagSet, path *string) {
	f.StringVar(path, "state", "", "start from the state in FILE (saved by run --save-state, or a state-tuned .pth/.st)")
}

// checkState refuses a --state file that cannot be opened, before any
// model is loaded; what it holds is read once the model is known.
func checkState(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--state: %w", err)
	}
	return f.Close()
}

// startState reads the state file at path for a model described by info;
// no path means the initial state (nil).
func startState(path string, info format.ModelInfo) (*engine.Snapshot, error) {
	if path == "" {
		return nil, nil
	}
	return statefile.Load(path, info)
}

// resume restores st from the state file at path (none: st stays as it is).
func resume(st engine.State, path string, info format.ModelInfo) error {
	from, err := startState(path, info)
	if err != nil || from == nil {
		return err
	}
	return st.Restore(from)
}

// saveState writes st to the state file at path.
func saveState(ctx context.Context, st engine.State, path string, force bool) error {
	snap, err := st.Snapshot()
	if err != nil {
		return err
	}
	return statefile.Save(ctx, path, snap, force)
}
