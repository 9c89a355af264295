package gpu

import (
	"os"
	"sync"
)

// Software reports whether the adapter is a CPU implementation of Vulkan
// (Mesa's lavapipe, SwiftShader): it runs every kernel, correctly and
// slowly, so work that has a CPU path of its own is better done there.
func (i Info) Software() bool { return i.Type == "cpu" }

var quietOnce sync.Once

// quietLoader keeps the Vulkan drivers' presentation code (libwayland,
// loaded by Mesa even for compute) from printing "error: XDG_RUNTIME_DIR is
// invalid or not set" on every run where the variable is unset: it needs
// only an absolute path. /dev/null is one under which no display socket can
// exist, so nothing is ever connected to.
func quietLoader() {
	quietOnce.Do(func() {
		if os.Getenv("XDG_RUNTIME_DIR") == "" {
			os.Setenv("XDG_RUNTIME_DIR", "/dev/null")
		}
	})
}
