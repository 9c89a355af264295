package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// entries lists dir, so tests can see that no temporary file is left.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

type writeFileCase struct {
	name     string
	existing string // "" means no file before
	force    bool
	ctx      context.Context
	write    func(io.Writer) error
	wantErr  error
	want     string // content afterwards; "" means absent
}

func TestWriteFile(t *testing.T) {
	boom := errors.New("boom")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []writeFileCase{
		{name: "new", write: writeString("new"), want: "new"},
		{name: "exists no force", existing: "old", write: writeString("new"), wantErr: ErrExists, want: "old"},
		{name: "exists force", existing: "old", force: true, write: writeString("new"), want: "new"},
		{name: "write fails", write: func(w io.Writer) error {
			io.WriteString(w, "partial")
			return boom
		}, wantErr: boom},
		{name: "write fails keeps old", existing: "old", force: true, write: func(w io.Writer) error {
			io.WriteString(w, "partial")
			return boom
		}, wantErr: boom, want: "old"},
		{name: "cancelled before", ctx: cancelled, write: writeString("new"), wantErr: context.Canceled},
	}
	for _, tc := range tests {
		for _, noSync := range []bool{false, true} {
			name := tc.name
			if noSync {
				name += " no sync"
			}
			t.Run(name, func(t *testing.T) { testWriteFile(t, tc, noSync) })
		}
	}
}

// testWriteFile runs one case of TestWriteFile: only a durable write that
// commits syncs, and a write with NoSync leaves the same files behind
// without a sync.
func testWriteFile(t *testing.T, tc writeFileCase, noSync bool) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	if tc.existing != "" {
		if err := os.WriteFile(path, []byte(tc.existing), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := tc.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	before := Syncs()
	err := WriteFile(ctx, path, Options{Force: tc.force, NoSync: noSync}, tc.write)
	if !errors.Is(err, tc.wantErr) {
		t.Fatalf("err = %v, want %v", err, tc.wantErr)
	}
	switch n := Syncs() - before; {
	case noSync && n != 0:
		t.Errorf("%d syncs with NoSync, want none", n)
	case !noSync && err == nil && n < 2:
		t.Errorf("%d syncs for a durable commit, want the file's and its folder's", n)
	}
	got, rerr := os.ReadFile(path)
	switch {
	case tc.want == "" && !errors.Is(rerr, fs.ErrNotExist):
		t.Errorf("file exists (%q, %v), want none", got, rerr)
	case tc.want != "" && string(got) != tc.want:
		t.Errorf("content %q (%v), want %q", got, rerr, tc.want)
	}
	wantEntries := []string(nil)
	if tc.want != "" {
		wantEntries = []string{"out.bin"}
	}
	if e := entries(t, dir); !slices.Equal(e, wantEntries) {
		t.Errorf("folder holds %q, want %q", e, wantEntries)
	}
}

func TestExistsIsFSErrExist(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x")
	os.WriteFile(path, nil, 0o644)
	_, err := Create(path, Options{})
	if !errors.Is(err, fs.ErrExist) || !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists and fs.ErrExist", err)
	}
	// The message says it once: "create PATH: already exists (not
	// replaced without force)".
	if want := "create " + path + ": already exists (not replaced without force)"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

// A cancellation in the middle of a write stops it at the next chunk and
// leaves nothing behind.
func TestCancelMidWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	ctx, cancel := context.WithCancel(context.Background())
	chunks := 0
	err := WriteFile(ctx, path, Options{}, func(w io.Writer) error {
		for {
			if _, err := w.Write(make([]byte, 100)); err != nil {
				return err
			}
			if chunks++; chunks == 3 {
				cancel()
			}
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if chunks != 3 {
		t.Errorf("%d chunks written, want 3 (the write after cancel must fail)", chunks)
	}
	if e := entries(t, dir); len(e) != 0 {
		t.Errorf("folder holds %q, want nothing", e)
	}
}

// A destination that appears while the temporary file is written is not
// replaced without force.
func TestCommitRechecks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	f, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Discard()
	io.WriteString(f, "new")
	os.WriteFile(path, []byte("other"), 0o644)
	if err := f.Commit(); !errors.Is(err, ErrExists) {
		t.Fatalf("Commit = %v, want ErrExists", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "other" {
		t.Errorf("content %q, want %q", got, "other")
	}
	if e := entries(t, dir); !slices.Equal(e, []string{"out.bin"}) {
		t.Errorf("folder holds %q", e)
	}
}

func TestCommitThenDiscard(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	f, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(f.TempName()) != dir {
		t.Errorf("temporary file %s not in %s", f.TempName(), dir)
	}
	io.WriteString(f, "data")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Discard(); err != nil {
		t.Errorf("Discard after Commit = %v, want nil", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Write after Commit = %v, want fs.ErrClosed", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "data" {
		t.Errorf("content %q, want %q", got, "data")
	}
	// The committed file gets the permissions os.Create would give (0666
	// less the umask), not a temporary file's 0600.
	ref, err := os.Create(filepath.Join(dir, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	ref.Close()
	fi, err1 := os.Stat(path)
	rfi, err2 := os.Stat(ref.Name())
	if err1 != nil || err2 != nil || fi.Mode() != rfi.Mode() {
		t.Errorf("mode %v, want %v as os.Create gives (%v, %v)", fi.Mode(), rfi.Mode(), err1, err2)
	}
}

// A file written in pieces past several writeback windows, its start
// rewritten at the end as a header completed last is, commits with exactly
// the bytes written: durably, having asked for the writeback of the pieces
// as they came, or with NoSync, without a single sync.
func TestWriteBack(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoSync=%v", noSync), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "big")
			before := Syncs()
			f, err := Create(path, Options{NoSync: noSync})
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, 3*writebackBytes+12345)
			for i := range want {
				want[i] = byte(i * 13 / 7)
			}
			for rest, n := want, 1; len(rest) > 0; n = n*3 + 1 {
				n = min(n%(writebackBytes+3), len(rest))
				if _, err := f.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			copy(want, "header")
			if _, err := f.WriteAt([]byte("header"), 0); err != nil {
				t.Fatal(err)
			}
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(want))
			}
			// A writeback request may be merged into the next one when the
			// goroutine is behind, so at least one is made, and the file's
			// and its folder's syncs.
			switch n := Syncs() - before; {
			case noSync && n != 0:
				t.Errorf("%d syncs with NoSync, want none", n)
			case !noSync && n < 3:
				t.Errorf("%d syncs, want a writeback request, the file's and its folder's sync", n)
			}
			if e := entries(t, filepath.Dir(path)); !slices.Equal(e, []string{"big"}) {
				t.Errorf("folder holds %q, want only the file", e)
			}
		})
	}
}
