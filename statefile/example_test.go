package statefile_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/runner"
	"github.com/rwkvkit/rwkvkit/statefile"
)

// Feed a prompt once, save the state after it, and resume from the file
// later (in another process, or on another engine).
func Example() {
	src, err := format.Open("../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth")
	if err != nil {
		log.Fatal(err)
	}
	m, err := runner.Load(context.Background(), src)
	src.Close()
	if err != nil {
		log.Fatal(err)
	}
	state, err := m.NewState()
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.Forward(state, []int{'T', 'h', 'e', ' '}, false); err != nil {
		log.Fatal(err)
	}
	snap, err := state.Snapshot()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "state")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "the.state.rkv")
	if err := statefile.Save(context.Background(), path, snap, false); err != nil {
		log.Fatal(err)
	}

	loaded, err := statefile.Load(path, m.Info()) // also reads state-tuned .pth and .st files
	if err != nil {
		log.Fatal(err)
	}
	resumed, err := m.NewState()
	if err != nil {
		log.Fatal(err)
	}
	if err := resumed.Restore(loaded); err != nil {
		log.Fatal(err)
	}
	logits, err := m.Forward(resumed, []int{'c'}, false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(logits), "logits after \"The c\"")
	// Output: 256 logits after "The c"
}
