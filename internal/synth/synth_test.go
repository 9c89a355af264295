package synth

import (
	"os"
	"testing"

	"rwkvkit/format"
)

// TestWritePTHEnv writes a synthetic model when RWKVKIT_SYNTH_OUT names a
// file; it is a tool for measurements, not a check.
func TestWritePTHEnv(t *testing.T) {
	out := os.Getenv("RWKVKIT_SYNTH_OUT")
	if out == "" {
		t.Skip("RWKVKIT_SYNTH_OUT not set")
	}
	src, err := RWKV7(RWKV7_0_1B, format.F16, 1)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WritePTH(f, src); err != nil {
		t.Fatal(err)
	}
}
