// Package gputest gives tests a shared GPU device, skipping the test when
// there is none unless the environment demands one.
package gputest

import (
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/rwkvkit/rwkvkit/gpu"
)

// RequireEnv is the environment variable that turns "no GPU" from a skip
// into a failure (set it in CI, where lavapipe must be present).
const RequireEnv = "RWKVKIT_REQUIRE_GPU"

var (
	once   sync.Once
	shared *gpu.Device
	err    error
)

// Device returns a device shared by all tests of the process (opened on
// first use, never closed). With no adapter it skips the test, or fails it
// when RWKVKIT_REQUIRE_GPU is set; any other error fails the test.
func Device(t testing.TB) *gpu.Device {
	t.Helper()
	once.Do(func() {
		shared, err = gpu.Open()
		if err == nil {
			t.Logf("GPU: %s", shared.Info())
		}
	})
	switch {
	case err == nil:
		return shared
	case errors.Is(err, gpu.ErrNoAdapter) && os.Getenv(RequireEnv) == "":
		t.Skipf("%v (set %s=1 to make this a failure)", err, RequireEnv)
	default:
		t.Fatalf("%v", err)
	}
	return nil
}

// Available reports whether GPU branches of a test should run: an adapter
// answers, or the environment demands one (the branch then fails).
func Available() bool {
	once.Do(func() { shared, err = gpu.Open() })
	return err == nil || os.Getenv(RequireEnv) != ""
}
