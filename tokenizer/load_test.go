package tokenizer

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestAppendLiteral(t *testing.T) {
	// Expected bytes are what Python 3 gives for s.encode("utf-8") or b.
	tests := []struct {
		lit, want string
	}{
		{`'a b'`, "a b"},
		{`"it's"`, "it's"},
		{`'\''`, "'"},
		{`'\\'`, "\\"},
		{`'\t\n\r\x0b\x0c'`, "\t\n\r\v\f"},
		{`'\a\b\f\v'`, "\a\b\f\v"},
		{`'\x00\x7f'`, "\x00\x7f"},
		{`'\x80'`, "\xc2\x80"}, // a str escape names a code point
		{`b'\x80'`, "\x80"},    // a bytes escape names a byte
		{`b'\xf0\x9f'`, "\xf0\x9f"},
		{`'\u2002'`, "\xe2\x80\x82"},
		{`'\U0001F600'`, "😀"},
		{`'\101\0'`, "A\x00"},
		{`b'\377'`, "\xff"},
		{`'你好'`, "你好"},
		{`'\q'`, `\q`},          // unknown escapes keep the backslash
		{`b'\u2002'`, `\u2002`}, // \u is no escape in bytes
		{`' " '`, ` " `},
	}
	for _, tt := range tests {
		got, err := appendLiteral(nil, []byte(tt.lit))
		if err != nil || string(got) != tt.want {
			t.Errorf("appendLiteral(%s) = %q, %v; want %q", tt.lit, got, err, tt.want)
		}
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name, vocab string
		line        int // 0: not a syntax error
		msg         string
	}{
		{"length mismatch", "1 'ab' 3\n", 1, "literal is 2 bytes, line says 3"},
		{"str escape length", "1 '\\x80' 1\n", 1, "literal is 2 bytes, line says 1"},
		{"no length", "1 'ab'\n", 1, "want \"<id> <literal> <length>\""},
		{"bad length", "1 'a' x\n", 1, "bad byte length"},
		{"bad id", "x1 'a' 1\n", 0, "not a vocabulary"},
		{"bad id later", "1 'a' 1\n2x 'b' 1\n", 2, "bad token id"},
		{"id zero", "0 'a' 1\n", 1, "out of range"},
		{"id huge", "99999999999 'a' 1\n", 1, "out of range"},
		{"duplicate id", "1 'a' 1\n\n1 'b' 1\n", 3, "already defined on line 1"},
		{"unquoted", "1 ab 2\n", 1, "want a quoted str or bytes literal"},
		{"unterminated", "1 'ab 2\n", 1, "want a quoted str or bytes literal"},
		{"inner quote", "1 'a'b' 3\n", 1, "unescaped quote"},
		{"truncated hex", "1 '\\x4' 1\n", 1, "truncated \\x escape"},
		{"bad hex", "1 '\\xzz' 1\n", 1, "bad \\x escape"},
		{"surrogate", "1 '\\ud800' 3\n", 1, "no UTF-8 encoding"},
		{"beyond unicode", "1 '\\U00110000' 4\n", 1, "no UTF-8 encoding"},
		{"non-ascii bytes", "1 b'é' 2\n", 1, "non-ASCII byte"},
		{"invalid utf8", "1 '\xff' 1\n", 1, "invalid UTF-8"},
		{"dangling backslash", "1 'a\\' 1\n", 1, "ends inside an escape"},
		{"named escape", "1 '\\N{SPACE}' 1\n", 1, `\N{...}`},
		{"empty token", "1 '' 0\n", 1, "empty token"},
		{"missing bytes", "1 'a' 1\n", 0, "no token for the single byte 0x00"},
		{"empty file", "\n \n", 0, "empty vocabulary file"},
		{"html", "<!DOCTYPE html>", 0, "not a vocabulary"},
		{"long line", "1 '" + strings.Repeat("a", maxLine) + "' 1\n", 1, "longer than"},
		{"json not object", "{\"1\": 5}", 0, "want a string or an array"},
		{"json byte range", `{"1": [256]}`, 0, "byte value 256 out of range"},
		{"json bad key", `{"one": "a"}`, 0, `key "one": bad token id`},
		{"json duplicate", `{"1": "a", "1": "b"}`, 0, "id 1 appears twice"},
		{"json lone surrogate", `{"1": "\ud800"}`, 0, "lone surrogate"},
		{"json empty", `{"1": ""}`, 0, "empty token"},
		{"json truncated", `{"1": "a"`, 0, "json:"},
		{"json trailing", `{"1": "a"} {}`, 0, "after the closing brace"},
	}
	for _, tt := range tests {
		_, err := Load(strings.NewReader(tt.vocab))
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error %q does not say %q", tt.name, err, tt.msg)
		}
		var se *SyntaxError
		if tt.line > 0 && (!errors.As(err, &se) || se.Line != tt.line) {
			t.Errorf("%s: error %q is not a SyntaxError on line %d", tt.name, err, tt.line)
		}
	}
}

func TestLoadBOMAndCRLF(t *testing.T) {
	text := strings.ReplaceAll(byteLines(), "\n", "\r\n") + "300 'ab' 2\r\n"
	js := `{` + strings.TrimPrefix(jsonBytes(1), ", ") + `, "300": "ab"}`
	for _, vocab := range []string{"\ufeff" + text, "\ufeff" + js} {
		v, err := Load(strings.NewReader(vocab))
		if err != nil {
			t.Fatalf("%.20q: %v", vocab, err)
		}
		if b, _ := v.Token(300); string(b) != "ab" {
			t.Errorf("%.20q: Token(300) = %q", vocab, b)
		}
	}
}

func TestLoadFileNamesFile(t *testing.T) {
	_, err := LoadFile("../fixtures/vocab/tokenizer-cases.jsonl")
	if err == nil || !strings.Contains(err.Error(), "tokenizer-cases.jsonl") {
		t.Errorf("error %v does not name the file", err)
	}
}

func TestJSONReplacementCharacter(t *testing.T) {
	// U+FFFD itself is a valid token, written literally or escaped.
	v, err := Load(strings.NewReader(`{"1": "\ufffd", "2": "�x"` + jsonBytes(3) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int]string{1: "\uFFFD", 2: "\uFFFDx"} {
		if b, _ := v.Token(id); string(b) != want {
			t.Errorf("Token(%d) = %q, want %q", id, b, want)
		}
	}
}

// jsonBytes lists the 256 single bytes as JSON entries from id first on.
func jsonBytes(first int) string {
	var b strings.Builder
	for c := range 256 {
		b.WriteString(`, "`)
		b.WriteString(strconv.Itoa(first + c))
		b.WriteString(`": [`)
		b.WriteString(strconv.Itoa(c))
		b.WriteString(`]`)
	}
	return b.String()
}
