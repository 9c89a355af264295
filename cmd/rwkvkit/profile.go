package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/atomicfile"
)

// addCPUProfile gives root the hidden --cpuprofile FILE flag, which writes
// a CPU profile of a command that succeeds to FILE. FILE must not exist:
// the flag never replaces a file, writes to a device or through a symbolic
// link, or touches an input, whatever --force says.
func addCPUProfile(root *cobra.Command) {
	var path string
	var f *os.File
	root.PersistentFlags().StringVar(&path, "cpuprofile", "", "write a CPU profile to this new file")
	root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if path == "" {
			return nil
		}
		if err := atomicfile.Check(path, false); errors.Is(err, atomicfile.ErrExists) {
			return fmt.Errorf("--cpuprofile %s: the file exists (a profile is written to a new file only)", path)
		} else if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		// O_EXCL: a file made since the check is not replaced either.
		pf, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			pf.Close()
			os.Remove(path)
			return err
		}
		f = pf
		return nil
	}
	root.PersistentPostRunE = func(cmd *cobra.Command, args []string) error {
		if f == nil {
			return nil
		}
		pprof.StopCPUProfile()
		return f.Close()
	}
}
