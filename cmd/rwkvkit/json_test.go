package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// decodeJSON parses out into v strictly: every key must be one v knows.
func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// convert, quantize and merge --json report the file written: sizes in
// bytes that are the files' own, parameters, and bits per weight.
func TestWriteJSON(t *testing.T) {
	dir := t.TempDir()
	in := tiny + "tiny-rwkv-7v0-834K.pth"
	inSize := fileSize(t, in)
	for _, c := range []struct {
		args   []string
		format string
		bits   [2]float64 // bounds
	}{
		{[]string{"convert", in, filepath.Join(dir, "c.st")}, "safetensors", [2]float64{16, 16.5}},
		{[]string{"quantize", in, filepath.Join(dir, "q.rkv"), "--nf4", "all", "--device", "cpu"}, "rkv", [2]float64{4.25, 16}},
		{[]string{"merge", in, filepath.Join(dir, "m.rkv"), "--lora", demoLoRA, "--device", "cpu"}, "rkv", [2]float64{16, 16.5}},
	} {
		out, err := runStdout(t, append(c.args, "--json")...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		var w written
		decodeJSON(t, out, &w)
		if w.File != c.args[2] || w.Format != c.format || w.Parameters != 829888 || w.InputSizeBytes != inSize ||
			w.OutputSizeBytes != fileSize(t, c.args[2]) || w.BitsPerWeight < c.bits[0] || w.BitsPerWeight > c.bits[1] {
			t.Errorf("%v: %+v", c.args[:2], w)
		}
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestTokenizeJSON(t *testing.T) {
	out, err := runStdout(t, "tokenize", "--json", "Hello, world!")
	if err != nil {
		t.Fatal(err)
	}
	var ids struct {
		Tokens int   `json:"tokens"`
		IDs    []int `json:"ids"`
	}
	decodeJSON(t, out, &ids)
	// The World vocabulary's published case for "Hello, world!".
	if ids.Tokens != 4 || len(ids.IDs) != 4 || ids.IDs[0] != 33155 {
		t.Errorf("%+v", ids)
	}
	out, _, err = runStdin(t, strings.Trim(strings.Join(strings.Fields(fmt.Sprint(ids.IDs)), ","), "[]"), "tokenize", "--decode", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var text struct {
		Text string `json:"text"`
	}
	decodeJSON(t, out, &text)
	if text.Text != "Hello, world!" {
		t.Errorf("%+v", text)
	}
}

// run --json prints the text and the statistics as one object, and
// nothing on stderr but what the model loading says.
func TestRunJSON(t *testing.T) {
	out, stderr, err := runStdin(t, "", "run", tiny+"tiny-rwkv-7v0-834K.pth", "--prompt", "The ", "-n", "12", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st runStats
	decodeJSON(t, out, &st)
	if st.Text == nil || len(*st.Text) == 0 || st.PromptTokens != 4 || st.GeneratedTokens != 12 || st.GenerationTokensPerSecond <= 0 || st.Seed == 0 {
		t.Errorf("%+v", st)
	}
	if strings.Contains(stderr, "seed:") || strings.Contains(stderr, "tokens/s") {
		t.Errorf("stderr %q", stderr)
	}
}
