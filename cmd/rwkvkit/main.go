// Command rwkvkit converts, quantizes, merges, serializes and runs RWKV
// language models. Run `rwkvkit help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// Exit statuses: 1 when verify's thresholds are missed, 2 on bad input or any
// other failure.
const (
	exitThreshold = 1
	exitError     = 2
)

// thresholdError reports that a check ran but its result missed a threshold.
type thresholdError struct{ msg string }

func (e *thresholdError) Error() string { return e.msg }

func main() {
	// A terminal closed (SIGHUP) or a kill(1) (SIGTERM) stops a command the
	// way Ctrl-C does: what it was writing is removed, the old file kept.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	root := newRoot()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	if ctx.Err() != nil {
		// A signal stopped it: say so first, not only what it was doing
		// when its context was cancelled.
		fmt.Fprintln(os.Stderr, "rwkvkit: interrupted:", errorText(err))
	} else {
		fmt.Fprintln(os.Stderr, "rwkvkit:", errorText(err))
	}
	var te *thresholdError
	if errors.As(err, &te) {
		os.Exit(exitThreshold)
	}
	os.Exit(exitError)
}

// maxErrorText bounds what an error prints: messages quote names from the
// files they are about, cut short where they are made (format.Quote), and
// this is the last guard against a file's names filling a terminal.
const maxErrorText = 3072

func errorText(err error) string {
	s := err.Error()
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes in all)", s[:cut], len(s))
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "rwkvkit",
		Short:         "Convert, quantize, merge, serialize and run RWKV language models",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	// --version without -v: -v stays free for a verbose flag.
	showVersion := root.Flags().Bool("version", false, "print the version and exit")
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if *showVersion {
			printVersion(cmd.OutOrStdout())
			return nil
		}
		return cmd.Help()
	}
	root.SetFlagErrorFunc(suggestFlag)
	addCPUProfile(root)
	root.AddCommand(
		newInspect(),
		newConvert(),
		newTokenize(),
		newRun(),
		newLogits(),
		newVerify(),
		newQuantize(),
		newMerge(),
		newDemo(),
		newVersion(),
	)
	return root
}
