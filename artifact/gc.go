package artifact

import (
	"runtime/debug"
	"sync"
)

// gcPercent is the garbage collector's target (GOGC) while a build runs. A
// build's heap is a few large buffers of plain numbers, each dropped once
// its tensor is written; they cost little to collect, and under the default
// target of 100 their garbage lets the heap grow to twice what is in use.
const gcPercent = 20

var gc struct {
	sync.Mutex
	builds int // running
	saved  int // the target before the first of them
}

// tightenGC lowers the collector's target to gcPercent, unless it is lower
// already, until every build that called it has called the function it
// returns.
func tightenGC() (restore func()) {
	gc.Lock()
	defer gc.Unlock()
	if gc.builds == 0 {
		gc.saved = debug.SetGCPercent(gcPercent)
		if gc.saved >= 0 && gc.saved < gcPercent || gc.saved < 0 {
			debug.SetGCPercent(gc.saved) // lower, or off: the program's own choice
		}
	}
	gc.builds++
	return sync.OnceFunc(func() {
		gc.Lock()
		defer gc.Unlock()
		if gc.builds--; gc.builds == 0 {
			debug.SetGCPercent(gc.saved)
		}
	})
}
