package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rwkvkit/rwkvkit/atomicfile"
)

// Every command that writes a model writes the same bytes with --no-sync
// as without, commits them (the output in place, no temporary file left),
// and asks for no sync at all, where the durable write syncs.
func TestNoSync(t *testing.T) {
	model := tiny + "tiny-rwkv-7v0-834K.pth"
	for _, tc := range []struct {
		name string
		args []string // the command and its input, before OUT
		out  string
		want string // the file the output must equal; "" means the durable run's
	}{
		{"convert", []string{"convert", model}, "out.st", tiny + "st/tiny-rwkv-7v0-834K.st"},
		{"quantize", []string{"quantize", "--nf4", "all", "--device", "cpu", model}, "out.rkv", ""},
		{"merge", []string{"merge", "--lora", demoLoRA, "--device", "cpu", model}, "out.rkv", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var outputs [2][]byte
			for i, noSync := range []bool{false, true} {
				dir := t.TempDir()
				out := filepath.Join(dir, tc.out)
				args := append(slices.Clone(tc.args), out)
				if noSync {
					args = append(args, "--no-sync")
				}
				before := atomicfile.Syncs()
				if msg, err := run(t, args...); err != nil {
					t.Fatalf("%v: %v\n%s", args, err, msg)
				}
				switch n := atomicfile.Syncs() - before; {
				case noSync && n != 0:
					t.Errorf("--no-sync: %d syncs, want none", n)
				case !noSync && n < 2:
					t.Errorf("durable: %d syncs, want at least the file's and its folder's", n)
				}
				if es, err := os.ReadDir(dir); err != nil || len(es) != 1 || es[0].Name() != tc.out {
					t.Errorf("folder holds %v (%v), want only %s", es, err, tc.out)
				}
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				outputs[i] = b
			}
			want := outputs[0]
			if tc.want != "" {
				var err error
				if want, err = os.ReadFile(tc.want); err != nil {
					t.Fatal(err)
				}
			}
			for i, b := range outputs {
				if !bytes.Equal(b, want) {
					t.Errorf("run %d: %d bytes differ from the %d expected", i, len(b), len(want))
				}
			}
		})
	}
}
