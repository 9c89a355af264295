package convert_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rwkvkit/rwkvkit/convert"
	"github.com/rwkvkit/rwkvkit/gguf"
	"github.com/rwkvkit/rwkvkit/model"
)

// An output named .gguf (or Format "gguf") is the GGUF gguf.Write makes of
// the model (which fixtures/gguf checks against llama.cpp); a v4 model is
// refused and leaves nothing behind.
func TestConvertToGGUF(t *testing.T) {
	const pth = "../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth"
	dir := t.TempDir()
	for _, c := range []struct{ out, format string }{{"m.gguf", ""}, {"m.bin", "gguf"}} {
		out := filepath.Join(dir, c.out)
		if _, err := convert.File(context.Background(), pth, out, &convert.Options{Format: c.format, GGUFType: gguf.TypeQ8_0}); err != nil {
			t.Fatalf("%s: %v", c.out, err)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		src, err := model.Open(pth)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		err = gguf.Write(&want, src, &gguf.Options{Type: gguf.TypeQ8_0, Name: "tiny-rwkv-7v0-834K"})
		src.Close()
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: not the bytes gguf.Write makes (%v)", c.out, err)
		}
	}
	out := filepath.Join(dir, "v4.gguf")
	_, err := convert.File(context.Background(), "../fixtures/rwkv-tiny/tiny-rwkv-4v0-660K.pth", out, nil)
	if !errors.Is(err, gguf.ErrNoArchitecture) {
		t.Errorf("v4: %v, want ErrNoArchitecture", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("v4: left %s behind", out)
	}
}

// The output's format is the one asked for, else its extension's: .gguf
// (in any case) is GGUF, anything else web-rwkv's .st.
func TestOutputFormat(t *testing.T) {
	for _, c := range []struct{ out, f, want string }{
		{"m.gguf", "", "gguf"},
		{"m.GGUF", "", "gguf"},
		{"m.st", "", "st"},
		{"m.bin", "", "st"},
		{"m.bin", "gguf", "gguf"},
		{"m.gguf", "st", "st"},
		{"m.st", "pth", ""},
	} {
		got, err := convert.OutputFormat(c.out, c.f)
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("OutputFormat(%q, %q) = %q, %v; want %q", c.out, c.f, got, err, c.want)
		}
	}
}
