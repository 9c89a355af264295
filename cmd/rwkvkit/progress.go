package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/schollz/progressbar/v3"
)

// newProgress returns a byte progress bar on stderr, drawn only when stderr
// is a terminal (an invisible bar otherwise, so callers need no checks).
func newProgress(total int64, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetVisibility(stderrIsTerminal()),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// newTokenProgress returns a bar counting tokens, with their rate, on
// stderr when it is a terminal.
func newTokenProgress(total int, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetVisibility(stderrIsTerminal()),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("tokens"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func stderrIsTerminal() bool {
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// barProgress is a writer's progress callback that moves bar.
func barProgress(bar *progressbar.ProgressBar) func(written, total int64) {
	return func(written, total int64) {
		bar.ChangeMax64(total)
		bar.Set64(written)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// humanBytes writes a size in decimal units, as disks and downloads count.
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// perSecond is the rate of n tokens in s seconds (0 for no time).
func perSecond(n int, s float64) float64 {
	if s <= 0 {
		return 0
	}
	return float64(n) / s
}
