package format

import (
	"io"
	"strings"
	"testing"
)

func TestCheckExtension(t *testing.T) {
	never := func([]byte) bool { return false }
	open := func(io.ReaderAt, int64) (*Source, error) { return nil, nil }
	Register("testmodel", never, open, ".tm", ".testmodel")
	Register("testpack", never, open, ".tp")
	for _, tc := range []struct {
		path, written, want string // want "" means accepted
	}{
		{"out.tm", "testmodel", ""},
		{"dir.tp/out.TESTMODEL", "testmodel", ""},
		{"out", "testmodel", ""},
		{"out.other", "testmodel", ""},
		{"out.tp", "testmodel", "out.tp: .tp is the extension of testpack files, but this writes testmodel data: name it out.tm"},
		{"a/b.c.Tm", "testpack", "a/b.c.Tm: .Tm is the extension of testmodel files, but this writes testpack data: name it a/b.c.tp"},
		{"raw.tp", "", "raw.tp: .tp is the extension of testpack files, but this writes data in no model format: name it raw.bin"},
		{"raw.f32", "", ""},
	} {
		err := CheckExtension(tc.path, tc.written)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckExtension(%q, %q) = %v, want nil", tc.path, tc.written, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckExtension(%q, %q) = %v, want %q", tc.path, tc.written, err, tc.want)
		}
	}
}
