package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is the tool version recorded in artifacts: the module version the
// build info gives (a release tag, or the pseudo-version go build stamps
// from the repository), or 0.1.0-dev where there is none (go test, go run
// of a work tree without VCS information).
var version = toolVersion()

func toolVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.1.0-dev"
}

// printVersion writes the version, the VCS revision and the Go toolchain,
// from the build info.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "rwkvkit %s\n", version)
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	fmt.Fprintf(w, "module:   %s\n", bi.Main.Path)
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	if rev := vcs["vcs.revision"]; rev != "" {
		if vcs["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(w, "revision: %s\n", rev)
	}
	if t := vcs["vcs.time"]; t != "" {
		fmt.Fprintf(w, "commit:   %s\n", t)
	}
	fmt.Fprintf(w, "go:       %s %s/%s\n", bi.GoVersion, runtime.GOOS, runtime.GOARCH)
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, the VCS revision and the Go toolchain rwkvkit was built from",
		Example: "  rwkvkit version\n  rwkvkit --version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			printVersion(cmd.OutOrStdout())
			return nil
		},
	}
}
