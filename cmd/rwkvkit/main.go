// Command rwkvkit converts, quantizes, merges, serializes and runs RWKV
// language models. Run `rwkvkit help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
)

// version is the tool version recorded in artifacts; set with -ldflags at release.
var version = "0.1.0-dev"

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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root := newRoot()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "rwkvkit:", err)
	var te *thresholdError
	if errors.As(err, &te) {
		os.Exit(exitThreshold)
	}
	os.Exit(exitError)
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "rwkvkit",
		Short:         "Convert, quantize, merge, serialize and run RWKV language models",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
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
	)
	return root
}
