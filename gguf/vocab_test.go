package gguf

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/tokenizer"
)

// TestWorldTokens compares the tokens written for a World model with those
// of llama.cpp's converter, which Python's repr() makes
// (fixtures/gguf/world_tokens.py, hashed), and checks that llama.cpp's
// unescaping gives every token's bytes back.
func TestWorldTokens(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(fixtureDir, "world-tokens.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	kvs, err := vocabulary(65536)
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for _, kv := range kvs {
		if kv.Key == "tokenizer.ggml.tokens" {
			tokens = kv.Value.V.([]string)
		}
	}
	h := sha256.New()
	for _, s := range tokens {
		h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.TrimSpace(string(want)) {
		t.Errorf("token list hash %s, the converter's is %s", got, want)
	}
	world := tokenizer.World()
	for id := 1; id < world.VocabSize(); id++ {
		b, _ := world.Token(id)
		if got := Unescape(tokens[id]); !bytes.Equal(got, b) {
			t.Fatalf("token %d: %q unescapes to %q, want %q", id, tokens[id], got, b)
		}
	}
	for c := range 256 {
		if got := Unescape(escape([]byte{byte(c)})); !bytes.Equal(got, []byte{byte(c)}) {
			t.Errorf("byte %#02x: %q unescapes to %q", c, escape([]byte{byte(c)}), got)
		}
	}
}
