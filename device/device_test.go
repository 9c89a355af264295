package device

import (
	"strings"
	"testing"
)

func TestParseChoice(t *testing.T) {
	for _, s := range []string{"auto", "cpu", "gpu"} {
		if c, err := ParseChoice(s); err != nil || string(c) != s {
			t.Errorf("%q: %q, %v", s, c, err)
		}
	}
	for _, s := range []string{"", "GPU", "cuda", "cpu "} {
		if _, err := ParseChoice(s); err == nil || !strings.Contains(err.Error(), "want auto, cpu or gpu") {
			t.Errorf("%q: %v, want an error listing the choices", s, err)
		}
	}
}

// CPU never opens a GPU; an unknown choice is an error, not the CPU.
func TestOpen(t *testing.T) {
	d, which, err := Open(CPU)
	if d != nil || which != "CPU" || err != nil {
		t.Errorf("CPU: %v, %q, %v", d, which, err)
	}
	if d, _, err := Open("vulkan"); d != nil || err == nil {
		t.Errorf("unknown choice: %v, %v", d, err)
	}
}
