package main

import (
	"strings"
	"testing"
)

func TestTokenize(t *testing.T) {
	out, err := run(t, "tokenize", "Hello, world!")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "33155,45,40213,34" { // from the vocabulary's published cases
		t.Errorf("tokenize: %q", out)
	}
	out, err = run(t, "tokenize", "--decode", "33155,45,40213,34")
	if err != nil || out != "Hello, world!" {
		t.Errorf("decode: %q, %v", out, err)
	}
}
