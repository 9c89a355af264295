package tokenizer

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// chunks records each Write separately.
type chunks struct{ w [][]byte }

func (c *chunks) Write(p []byte) (int, error) {
	c.w = append(c.w, bytes.Clone(p))
	return len(p), nil
}

func (c *chunks) String() string { return string(bytes.Join(c.w, nil)) }

func TestStreamDecoderEmoji(t *testing.T) {
	// "emoji 😀🚀 done": each emoji is b'\xf0\x9f' plus two single bytes.
	ids := []int{34295, 33, 3319, 153, 129, 3319, 155, 129, 30666}
	want := []string{"emoji", " ", "", "", "😀", "", "", "🚀", " done"}
	var out chunks
	d := NewStreamDecoder(World(), &out)
	for i, id := range ids {
		before := len(out.w)
		if err := d.WriteToken(id); err != nil {
			t.Fatal(err)
		}
		got := string(bytes.Join(out.w[before:], nil))
		if got != want[i] {
			t.Errorf("after token %d (%d): wrote %q, want %q", i, id, got, want[i])
		}
		if s := out.String(); !utf8.ValidString(s) || !strings.HasPrefix("emoji 😀🚀 done", s) {
			t.Errorf("after token %d: output %q is not a valid prefix of the text", i, s)
		}
	}
	if err := d.Flush(); err != nil || d.Buffered() != 0 {
		t.Fatalf("Flush: %v, %d bytes left", err, d.Buffered())
	}
	if out.String() != "emoji 😀🚀 done" {
		t.Errorf("output %q", out.String())
	}
}

func TestStreamDecoderInvalid(t *testing.T) {
	var out chunks
	d := NewStreamDecoder(World(), &out)
	steps := []struct {
		id   int
		want string // bytes written by this step
	}{
		{3319, ""},             // \xf0\x9f: could still become a character
		{33, "\xf0\x9f "},      // a space cannot continue it: passed on as is
		{256, "\xff"},          // a byte that never starts a character
		{EndOfText, ""},        // no bytes
		{3319, ""},             // held back again
		{-1, "flush:\xf0\x9f"}, // Flush writes the incomplete bytes as is
	}
	for i, s := range steps {
		before := len(out.w)
		var err error
		if s.id < 0 {
			err = d.Flush()
			s.want = strings.TrimPrefix(s.want, "flush:")
		} else {
			err = d.WriteToken(s.id)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := string(bytes.Join(out.w[before:], nil)); got != s.want {
			t.Errorf("step %d: wrote %q, want %q", i, got, s.want)
		}
	}
	if err := d.WriteToken(70000); !errors.Is(err, ErrUnknownID) {
		t.Errorf("unknown id: err = %v", err)
	}
}

// Any valid text streams out with every write valid UTF-8, and any text at
// all streams out exactly as Decode gives it.
func TestStreamDecoderRandom(t *testing.T) {
	v := World()
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 100 {
		invalid := i%4 == 3
		text := randomText(r, 1+r.IntN(300), invalid)
		var out chunks
		d := NewStreamDecoder(v, &out)
		for _, id := range v.Encode(text) {
			if err := d.WriteToken(id); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != text {
			t.Fatalf("streamed %q, want %q", out.String(), text)
		}
		for _, c := range out.w {
			if !invalid && !utf8.Valid(c) {
				t.Fatalf("write %q of %q is not valid UTF-8", c, text)
			}
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

func TestStreamDecoderWriteError(t *testing.T) {
	f := &failWriter{}
	d := NewStreamDecoder(Bytes{}, f)
	if err := d.WriteToken('a'); err == nil {
		t.Fatal("no error from a failing writer")
	}
	if err := d.WriteToken('b'); err == nil || f.n != 1 {
		t.Errorf("second write: err %v after %d writes; want the first error, no new write", err, f.n)
	}
	if err := d.Flush(); err == nil {
		t.Error("Flush after a write error returned nil")
	}
}
