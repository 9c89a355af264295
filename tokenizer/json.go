package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// loadJSON reads the JSON form: {"<id>": "<token>" or [<byte>, ...], ...}.
func loadJSON(r io.Reader) (*Vocab, error) {
	dec := json.NewDecoder(r)
	if t, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	} else if t != json.Delim('{') {
		return nil, errors.New("json: want an object mapping ids to tokens")
	}
	var (
		data []byte
		es   []entry
		seen = make(map[int32]bool)
	)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		key := t.(string) // object keys are always strings
		id, err := parseID([]byte(key))
		if err != nil {
			return nil, &SyntaxError{Msg: fmt.Sprintf("json: key %q: %v", clip([]byte(key)), err)}
		}
		if seen[id] {
			return nil, &SyntaxError{Msg: fmt.Sprintf("json: id %d appears twice", id)}
		}
		seen[id] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("json: id %d: %w", id, err)
		}
		start := len(data)
		if data, err = appendJSONToken(data, raw); err != nil {
			return nil, &SyntaxError{Msg: fmt.Sprintf("json: id %d: %v", id, err)}
		}
		if len(data) > maxBytes {
			return nil, &SyntaxError{Msg: fmt.Sprintf("json: tokens exceed %d bytes in all", maxBytes)}
		}
		if len(data) == start {
			return nil, &SyntaxError{Msg: fmt.Sprintf("json: id %d: empty token", id)}
		}
		es = append(es, entry{id: id, start: uint32(start), end: uint32(len(data))})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("json: data after the closing brace")
	}
	return newVocab(data, es)
}

// appendJSONToken appends the bytes of one token value: a string stands
// for its UTF-8 encoding, an array lists byte values.
func appendJSONToken(dst []byte, raw json.RawMessage) ([]byte, error) {
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return dst, err
		}
		// encoding/json quietly turns lone surrogates and invalid UTF-8
		// into U+FFFD; a token must not change that way.
		if strings.Count(s, "\uFFFD") != countReplacement(raw) {
			return dst, fmt.Errorf("string %s has a lone surrogate or invalid UTF-8", clip(raw))
		}
		return append(dst, s...), nil
	case '[':
		var vals []int
		if err := json.Unmarshal(raw, &vals); err != nil {
			return dst, fmt.Errorf("want an array of byte values: %v", err)
		}
		for _, v := range vals {
			if v < 0 || v > 255 {
				return dst, fmt.Errorf("byte value %d out of range [0, 255]", v)
			}
			dst = append(dst, byte(v))
		}
		return dst, nil
	}
	return dst, fmt.Errorf("want a string or an array of bytes, got %s", clip(raw))
}

// countReplacement counts the U+FFFD characters a JSON string literal
// spells, literally or as a \uFFFD escape.
func countReplacement(raw []byte) int {
	n := 0
	for i := 0; i < len(raw); i++ {
		switch {
		case raw[i] == '\\' && i+1 < len(raw):
			if raw[i+1] == 'u' && i+6 <= len(raw) && strings.EqualFold(string(raw[i+2:i+6]), "fffd") {
				n++
				i += 5
			} else {
				i++
			}
		case bytes.HasPrefix(raw[i:], []byte("\uFFFD")):
			n++
			i += utf8.RuneLen('\uFFFD') - 1
		}
	}
	return n
}
