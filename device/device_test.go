package device

import (
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/gpu"
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

// Auto takes a hardware GPU, or the CPU when the only adapter is software
// Vulkan; GPU takes any adapter.
func TestOpenAuto(t *testing.T) {
	g, err := gpu.Open()
	if err != nil {
		if d, which, err := Open(Auto); d != nil || err != nil || which != "CPU (no GPU answered)" {
			t.Errorf("no adapter: %v, %q, %v", d, which, err)
		}
		return
	}
	info := g.Info()
	g.Close()
	d, which, err := Open(Auto)
	if err != nil {
		t.Fatal(err)
	}
	if d != nil {
		defer d.Close()
	}
	if info.Software() {
		if d != nil || !strings.Contains(which, "software Vulkan") || !strings.HasPrefix(which, "CPU") {
			t.Errorf("auto with only %s: %v, %q", info, d, which)
		}
		forced, which, err := Open(GPU)
		if err != nil || forced == nil || !strings.HasPrefix(which, "GPU ") {
			t.Fatalf("gpu with only %s: %v, %q, %v", info, forced, which, err)
		}
		forced.Close()
	} else if d == nil || which != "GPU "+info.String() {
		t.Errorf("auto with %s: %v, %q", info, d, which)
	}
}
