package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The demo's printed table is checked: the float16 artifact matches the
// merged float model exactly (KL 0, top-1 100%), NF4 strays further than
// Int8, which strays a little, and the base model without the LoRA differs.
func TestDemo(t *testing.T) {
	keep := filepath.Join(t.TempDir(), "demo")
	out, err := run(t, "demo", "--keep", keep)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	kl := map[string]float64{}
	top1 := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		// Table rows are the lines with a percentage and seven columns.
		if len(f) < 7 || strings.HasPrefix(line, "•") || !strings.Contains(line, "%") {
			continue
		}
		for _, label := range []string{"float16", "Int8", "NF4", "LoRA)"} {
			if strings.Contains(line, label+" ") {
				v, err := strconv.ParseFloat(f[len(f)-4], 64)
				if err != nil {
					t.Fatalf("mean KL in %q: %v", line, err)
				}
				kl[label] = v
				top1[label] = f[len(f)-2]
			}
		}
	}
	if len(kl) != 4 {
		t.Fatalf("table rows not found:\n%s", out)
	}
	if kl["float16"] != 0 || top1["float16"] != "100.0%" {
		t.Errorf("float16 artifact differs from the float model: KL %v, top-1 %s", kl["float16"], top1["float16"])
	}
	if !(kl["NF4"] > kl["Int8"] && kl["Int8"] > 0) {
		t.Errorf("want NF4 KL > Int8 KL > 0, have %v and %v", kl["NF4"], kl["Int8"])
	}
	if !(kl["LoRA)"] > kl["Int8"]) {
		t.Errorf("the LoRA changed the model less than Int8 quantization did: %v vs %v", kl["LoRA)"], kl["Int8"])
	}
	for _, f := range []string{"tiny-rwkv-7v0-834K.pth", "tiny-rwkv7.st", "demo-lora.st", "merged-f16.rkv", "merged-int8.rkv", "merged-nf4.rkv"} {
		if _, err := os.Stat(filepath.Join(keep, f)); err != nil {
			t.Errorf("--keep: %v", err)
		}
	}
	// Into a folder that holds a file of the demo's, it writes nothing
	// without --force, and replaces the files with it.
	if _, stderr, code := rwkvkit(t, "demo", "--keep", keep, "--device", "cpu"); code != 2 || !strings.Contains(stderr, "already exists (not replaced without force)") {
		t.Errorf("demo into an earlier demo's folder: exit %d, %q", code, stderr)
	}
	again := filepath.Join(t.TempDir(), "again")
	must(t, os.Mkdir(again, 0o755))
	mine := filepath.Join(again, "merged-nf4.rkv")
	must(t, os.WriteFile(mine, []byte("mine"), 0o644))
	if _, _, code := rwkvkit(t, "demo", "--keep", again, "--device", "cpu"); code != 2 {
		t.Errorf("demo onto a file of the folder: exit %d, want 2", code)
	}
	if b, _ := os.ReadFile(mine); string(b) != "mine" {
		t.Error("demo without --force replaced a file")
	}
	if left, _ := os.ReadDir(again); len(left) != 1 {
		t.Errorf("a refused demo left %d files", len(left))
	}
	if _, err := run(t, "demo", "--keep", again, "--device", "cpu", "--force"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(mine); string(b) == "mine" {
		t.Error("demo --force kept the old file")
	}
	// Without --keep nothing stays behind.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if _, err := run(t, "demo", "--device", "cpu"); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("demo left %d entries in the temporary folder", len(left))
	}
}
