package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

const (
	vocabTxt  = "../fixtures/vocab/rwkv_vocab_v20230424.txt"
	vocabJSON = "../fixtures/vocab/rwkv_vocab_v20230424.json"
	casesFile = "../fixtures/vocab/tokenizer-cases.jsonl"
)

type tokenCase struct {
	Text   string `json:"text"`
	Tokens []int  `json:"tokens"`
}

// readCases reads the reference encodings made by the Python reference
// tokenizer.
func readCases(t testing.TB) []tokenCase {
	t.Helper()
	f, err := os.Open(casesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []tokenCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c tokenCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s: %v", casesFile, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 9 {
		t.Fatalf("%s: only %d cases", casesFile, len(cases))
	}
	return cases
}

func loadFile(t testing.TB, path string) *Vocab {
	t.Helper()
	v, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReferenceCases(t *testing.T) {
	vocabs := map[string]*Vocab{
		"embedded": World(),
		"txt":      loadFile(t, vocabTxt),
		"json":     loadFile(t, vocabJSON),
	}
	for _, c := range readCases(t) {
		for name, v := range vocabs {
			if got := v.Encode(c.Text); !slices.Equal(got, c.Tokens) {
				t.Errorf("%s: Encode(%q) = %v, want %v", name, c.Text, got, c.Tokens)
			}
			got, err := v.Decode(c.Tokens)
			if err != nil || string(got) != c.Text {
				t.Errorf("%s: Decode(%v) = %q, %v; want %q", name, c.Tokens, got, err, c.Text)
			}
		}
	}
}

// TestForms checks that the text form, the JSON form and the embedded copy
// hold the same 65529 tokens.
func TestForms(t *testing.T) {
	txt, js, emb := loadFile(t, vocabTxt), loadFile(t, vocabJSON), World()
	for _, v := range []*Vocab{txt, js, emb} {
		if v.VocabSize() != 65530 || v.Len() != 65529 {
			t.Fatalf("VocabSize %d, Len %d; want 65530, 65529", v.VocabSize(), v.Len())
		}
	}
	for id := range txt.VocabSize() {
		a, _ := txt.Token(id)
		b, _ := js.Token(id)
		c, _ := emb.Token(id)
		if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
			t.Fatalf("token %d: txt %q, json %q, embedded %q", id, a, b, c)
		}
	}
}

// Spot checks of the vocabulary against lines of the file, read by eye.
func TestTokens(t *testing.T) {
	v := World()
	tests := []struct {
		id   int
		want string
		ok   bool
	}{
		{0, "", true}, // EndOfText
		{1, "\x00", true},
		{129, "\x80", true},
		{256, "\xff", true},
		{257, "\t\t", true},
		{3319, "\xf0\x9f", true},
		{9804, "\u2002", true},
		{65529, strings.Repeat(" ", 128), true},
		{65530, "", false},
		{-1, "", false},
	}
	for _, tt := range tests {
		got, ok := v.Token(tt.id)
		if string(got) != tt.want || ok != tt.ok {
			t.Errorf("Token(%d) = %q, %v; want %q, %v", tt.id, got, ok, tt.want, tt.ok)
		}
		if tt.ok && tt.id != 0 {
			if id, ok := v.Lookup(tt.want); !ok || id != tt.id {
				t.Errorf("Lookup(%q) = %d, %v; want %d", tt.want, id, ok, tt.id)
			}
		}
	}
	if id, ok := v.Lookup("\xf0\x9f\x98"); ok {
		t.Errorf("Lookup of a non-token = %d", id)
	}
	if _, err := v.Decode([]int{33155, 65531}); !errors.Is(err, ErrUnknownID) {
		t.Errorf("Decode of unknown id: err = %v, want ErrUnknownID", err)
	}
}

// naiveEncoder is the greedy longest match written the slow, obvious way.
func naiveEncoder(v *Vocab) func(string) []int {
	byBytes := make(map[string]int)
	longest := 0
	for id := 1; id < v.VocabSize(); id++ {
		if b, ok := v.Token(id); ok {
			byBytes[string(b)] = id
			longest = max(longest, len(b))
		}
	}
	return func(text string) []int { return naiveEncode(byBytes, longest, text) }
}

func naiveEncode(byBytes map[string]int, longest int, text string) []int {
	var ids []int
	for i := 0; i < len(text); {
		for n := min(longest, len(text)-i); n > 0; n-- {
			if id, ok := byBytes[text[i:i+n]]; ok {
				ids = append(ids, id)
				i += n
				break
			}
		}
	}
	return ids
}

// randomText draws runes from ranges covering control characters, ASCII,
// Latin, Cyrillic, CJK, emoji and invalid bytes (when invalid is set).
func randomText(r *rand.Rand, n int, invalid bool) string {
	ranges := [][2]rune{
		{0, 0x1f}, {' ', '~'}, {' ', '~'}, {' ', '~'}, {0x7f, 0x7f}, {0x80, 0x24f},
		{0x400, 0x4ff}, {0x4e00, 0x9fff}, {0x3040, 0x30ff}, {0xac00, 0xd7a3},
		{0x1f300, 0x1f6ff}, {0x1f900, 0x1f9ff}, {0xe000, 0xf8ff}, {0x10000, 0x10ffff},
	}
	var b strings.Builder
	for b.Len() < n {
		if invalid && r.IntN(20) == 0 {
			b.WriteByte(byte(0x80 + r.IntN(0x80)))
			continue
		}
		rg := ranges[r.IntN(len(ranges))]
		c := rg[0] + r.Int32N(rg[1]-rg[0]+1)
		if 0xd800 <= c && c <= 0xdfff {
			continue
		}
		if r.IntN(3) == 0 { // runs of spaces and words, which long tokens match
			b.WriteString([]string{" the", "    ", "\n\n", " of", "ing ", "你好", "tion"}[r.IntN(7)])
		}
		b.WriteRune(c)
	}
	return b.String()
}

func TestRandomRoundTrip(t *testing.T) {
	v := World()
	naive := naiveEncoder(v)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		invalid := i%2 == 1
		text := randomText(r, 1+r.IntN(400), invalid)
		if !invalid && !utf8.ValidString(text) {
			t.Fatalf("generator made invalid UTF-8: %q", text)
		}
		ids := v.Encode(text)
		got, err := v.Decode(ids)
		if err != nil || string(got) != text {
			t.Fatalf("round trip of %q: got %q, %v", text, got, err)
		}
		if want := naive(text); !slices.Equal(ids, want) {
			t.Fatalf("Encode(%q) = %v, naive longest match %v", text, ids, want)
		}
	}
}

// byteLines is the start of a vocabulary in the text form: ids 1..256 are
// the single bytes, as in the World file.
func byteLines() string {
	var b strings.Builder
	for c := range 256 {
		fmt.Fprintf(&b, "%d b'\\x%02x' 1\n", c+1, c)
	}
	return b.String()
}

func TestDuplicateTokenEncodesAsHighestID(t *testing.T) {
	v, err := Load(strings.NewReader(byteLines() + "300 'ab' 2\n400 'abc' 3\n290 b'ab' 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	// "ab" is ids 290 and 300: the reference fills its bytes-to-id table
	// in id order, so the later (higher) id wins.
	tests := []struct {
		text string
		want []int
	}{
		{"ab", []int{300}},
		{"abc", []int{400}},
		{"abab", []int{300, 300}},
		{"aba", []int{300, 98}},
	}
	for _, tt := range tests {
		if got := v.Encode(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("Encode(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
	for _, id := range []int{290, 300} {
		if b, ok := v.Token(id); !ok || string(b) != "ab" {
			t.Errorf("Token(%d) = %q, %v", id, b, ok)
		}
	}
	if v.VocabSize() != 401 || v.Len() != 259 {
		t.Errorf("VocabSize %d, Len %d; want 401, 259", v.VocabSize(), v.Len())
	}
	if _, ok := v.Token(350); ok {
		t.Error("Token(350) reported present in a gap")
	}
}

func TestBytes(t *testing.T) {
	var tok Tokenizer = Bytes{}
	text := "a\x00é\xff"
	ids := tok.Encode(text)
	if want := []int{97, 0, 0xc3, 0xa9, 255}; !slices.Equal(ids, want) {
		t.Fatalf("Encode = %v, want %v", ids, want)
	}
	if b, err := tok.Decode(ids); err != nil || string(b) != text {
		t.Fatalf("Decode = %q, %v", b, err)
	}
	if _, err := tok.Decode([]int{256}); !errors.Is(err, ErrUnknownID) {
		t.Errorf("Decode(256): err = %v, want ErrUnknownID", err)
	}
	if tok.VocabSize() != 256 {
		t.Errorf("VocabSize = %d", tok.VocabSize())
	}
}

// TestRandomVocab builds vocabularies of random byte tokens, listed out of
// id order and with duplicates and long shared prefixes, and checks Encode
// against the naive longest match, in both file forms.
func TestRandomVocab(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	narrow := []byte{0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xfe, 0xff}
	for round := range 5 {
		var tokens [][]byte
		for range 2000 {
			var tok []byte
			switch r.IntN(4) {
			case 0: // a long shared prefix, past the eight-byte sort key
				tok = append([]byte("abababab\xff\xff"), narrow[r.IntN(len(narrow))])
			case 1: // many edges from one node
				tok = []byte{'a', byte(r.IntN(256))}
			case 2:
				if len(tokens) > 0 { // the same bytes under another id
					tok = bytes.Clone(tokens[r.IntN(len(tokens))])
					break
				}
				fallthrough
			default:
				for range 2 + r.IntN(12) {
					tok = append(tok, narrow[r.IntN(len(narrow))])
				}
			}
			tokens = append(tokens, tok)
		}
		ids := r.Perm(len(tokens))
		var txt, js strings.Builder
		txt.WriteString(byteLines())
		js.WriteString("{" + strings.TrimPrefix(jsonBytes(1), ", "))
		for i, tok := range tokens {
			id := 300 + ids[i]
			fmt.Fprintf(&txt, "%d b'", id)
			for _, c := range tok {
				fmt.Fprintf(&txt, "\\x%02x", c)
			}
			fmt.Fprintf(&txt, "' %d\n", len(tok))
			fmt.Fprintf(&js, `, "%d": [`, id)
			for j, c := range tok {
				if j > 0 {
					js.WriteString(",")
				}
				fmt.Fprint(&js, c)
			}
			js.WriteString("]")
		}
		js.WriteString("}")
		v, err := Load(strings.NewReader(txt.String()))
		if err != nil {
			t.Fatal(err)
		}
		vj, err := Load(strings.NewReader(js.String()))
		if err != nil {
			t.Fatal(err)
		}
		for id := range v.VocabSize() {
			a, okA := v.Token(id)
			b, okB := vj.Token(id)
			if !bytes.Equal(a, b) || okA != okB {
				t.Fatalf("round %d: token %d: text form %q, JSON form %q", round, id, a, b)
			}
		}
		naive := naiveEncoder(v)
		for range 50 {
			text := make([]byte, r.IntN(200))
			for i := range text {
				if r.IntN(10) == 0 {
					text[i] = byte(r.IntN(256))
				} else {
					text[i] = narrow[r.IntN(len(narrow))]
				}
			}
			got, want := v.Encode(string(text)), naive(string(text))
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: Encode(%q) = %v, naive %v", round, text, got, want)
			}
			if !slices.Equal(vj.Encode(string(text)), want) {
				t.Fatalf("round %d: JSON-loaded Encode(%q) differs", round, text)
			}
			if dec, err := v.Decode(got); err != nil || !bytes.Equal(dec, text) {
				t.Fatalf("round %d: Decode = %q, %v; want %q", round, dec, err, text)
			}
		}
	}
}
