//go:build race

package format

// raceEnabled: the race detector makes sync.Pool drop some of what it is
// given, so allocation bounds that rest on a pool do not hold.
const raceEnabled = true
