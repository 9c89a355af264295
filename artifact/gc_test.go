package artifact

import (
	"runtime/debug"
	"testing"
)

// Builds lower the collector's target while any of them runs, restore the
// program's own when the last ends, and leave a lower one as it is.
func TestTightenGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	first := tightenGC()
	second := tightenGC()
	if p := debug.SetGCPercent(gcPercent); p != gcPercent {
		t.Errorf("during two builds GOGC is %d, want %d", p, gcPercent)
	}
	first()
	first() // a second call changes nothing
	if p := debug.SetGCPercent(gcPercent); p != gcPercent {
		t.Errorf("during the second build GOGC is %d, want %d", p, gcPercent)
	}
	second()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after the builds GOGC is %d, want the program's 100", p)
	}

	debug.SetGCPercent(5)
	restore := tightenGC()
	if p := debug.SetGCPercent(5); p != 5 {
		t.Errorf("with GOGC=5 a build sets %d", p)
	}
	restore()
	if p := debug.SetGCPercent(100); p != 5 {
		t.Errorf("after a build with GOGC=5: %d", p)
	}
}
