package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run a writer in a child process (to kill it): with
// ATOMICFILE_HOLD set the child creates that path's temporary file, writes
// to it, says so on stdout and waits to be killed.
func TestMain(m *testing.M) {
	if path := os.Getenv("ATOMICFILE_HOLD"); path != "" {
		f, err := Create(path, Options{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		f.Write([]byte("partial"))
		fmt.Println("writing", f.TempName())
		time.Sleep(time.Minute)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// Nothing but a regular file is replaced: a device, a symbolic link (to a
// file or to nothing), a named pipe, a socket or a folder at the
// destination stays as it is, with force or without.
func TestNotRegularNeverReplaced(t *testing.T) {
	type maker func(t *testing.T, path string)
	cases := []struct {
		name string
		make maker
		kind string
	}{
		{"symlink to a file", func(t *testing.T, path string) {
			target := filepath.Join(filepath.Dir(path), "target")
			must(t, os.WriteFile(target, []byte("target"), 0o644))
			must(t, os.Symlink(target, path))
		}, "is a symbolic link"},
		{"dangling symlink", func(t *testing.T, path string) {
			must(t, os.Symlink(filepath.Join(filepath.Dir(path), "nowhere"), path))
		}, "is a symbolic link"},
		{"folder", func(t *testing.T, path string) { must(t, os.Mkdir(path, 0o755)) }, "is a folder"},
		{"named pipe", func(t *testing.T, path string) { must(t, syscall.Mkfifo(path, 0o644)) }, "is a named pipe"},
		{"socket", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			must(t, err)
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			t.Cleanup(func() { l.Close() })
		}, "is a socket"},
		{"character device", func(t *testing.T, path string) {
			// The same device numbers as /dev/null (1, 3), made in the test's
			// own folder so that a failure could not harm the real one.
			if err := syscall.Mknod(path, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
				t.Skipf("cannot make a device node here (%v): needs root", err)
			}
		}, "is a character device"},
	}
	for _, tc := range cases {
		for _, force := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s force=%v", tc.name, force), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "out.st")
				tc.make(t, path)
				before, err := os.Lstat(path)
				must(t, err)
				for _, err := range []error{
					Check(path, force),
					WriteFile(context.Background(), path, Options{Force: force}, writeString("new")),
				} {
					if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), tc.kind) || !strings.Contains(err.Error(), path) {
						t.Errorf("err = %v, want ErrNotRegular saying %q and naming %s", err, tc.kind, path)
					}
				}
				after, err := os.Lstat(path)
				if err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
					t.Errorf("destination changed: %v → %v (%v)", before.Mode(), after, err)
				}
				if b, err := os.ReadFile(filepath.Join(dir, "target")); err == nil && string(b) != "target" {
					t.Errorf("the symbolic link's target now holds %q", b)
				}
				for _, e := range entries(t, dir) {
					if strings.HasPrefix(e, TempPrefix) {
						t.Errorf("temporary file %s left behind", e)
					}
				}
			})
		}
	}
}

// A file replaced with force keeps its permission bits (not the setuid,
// setgid and sticky bits, which would give the new contents powers the old
// ones had); a new file gets 0666 less the umask.
func TestForceKeepsPermissions(t *testing.T) {
	for _, tc := range []struct{ before, want fs.FileMode }{
		{0o600, 0o600},
		{0o640, 0o640},
		{0o755, 0o755},
		{0o4755 | fs.ModeSetuid, 0o755},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "out.rkv")
		must(t, os.WriteFile(path, []byte("old"), 0o600))
		must(t, os.Chmod(path, tc.before&fs.ModePerm|tc.before&fs.ModeSetuid))
		must(t, WriteFile(context.Background(), path, Options{Force: true}, writeString("new")))
		fi, err := os.Stat(path)
		must(t, err)
		if fi.Mode() != tc.want {
			t.Errorf("replacing a %v file: mode %v, want %v", tc.before, fi.Mode(), tc.want)
		}
		if b, _ := os.ReadFile(path); string(b) != "new" {
			t.Errorf("content %q, want new", b)
		}
	}
}

// The destination may not be any of the inputs, compared by device and
// inode: the same name, another name of it (a hard link, a symbolic link
// given as the input, a path through ..) are all refused, with force too.
func TestSameFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "model.st")
	must(t, os.WriteFile(in, []byte("model"), 0o644))
	hard := filepath.Join(dir, "hard.st")
	must(t, os.Link(in, hard))
	soft := filepath.Join(dir, "soft.st")
	must(t, os.Symlink(in, soft))
	must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	for _, tc := range []struct{ out, in string }{
		{in, in},
		{hard, in},
		{in, soft},
		{filepath.Join(dir, "sub", "..", "model.st"), in},
	} {
		for _, force := range []bool{false, true} {
			err := Check(tc.out, force, "missing-input", tc.in)
			if !errors.Is(err, ErrSameFile) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("Check(%s, %v, %s) = %v, want ErrSameFile naming the input", tc.out, force, tc.in, err)
			}
		}
	}
	other := filepath.Join(dir, "other.st")
	must(t, os.WriteFile(other, []byte("other"), 0o644))
	if err := Check(other, true, in, hard, soft); err != nil {
		t.Errorf("Check of another file with force = %v", err)
	}
	if err := Check(other, false, in); !errors.Is(err, ErrExists) {
		t.Errorf("Check of another file without force = %v, want ErrExists", err)
	}
	if err := Check(filepath.Join(dir, "new.st"), false, in); err != nil {
		t.Errorf("Check of a new file = %v", err)
	}
	if b, _ := os.ReadFile(in); string(b) != "model" {
		t.Errorf("input now holds %q", b)
	}
}

// Of two writers racing to create one new path without force exactly one
// succeeds, and the file holds its data; the other fails with ErrExists
// (it came second) or ErrBusy (they overlapped), and leaves nothing.
func TestRacingWriters(t *testing.T) {
	all := noReplace
	defer func() { noReplace = all }()
	for i, move := range all {
		// Each way alone, as on a file system where only it works.
		noReplace = all[i : i+1]
		t.Run(fmt.Sprint("way ", i), func(t *testing.T) {
			probe := filepath.Join(t.TempDir(), "a")
			must(t, os.WriteFile(probe, nil, 0o644))
			if err := move(probe, probe+".moved"); errors.Is(err, errUnsupported) {
				t.Skip("not supported on this file system")
			}
			race(t, 200)
		})
	}
}

func race(t *testing.T, trials int) {
	if testing.Short() {
		trials /= 4
	}
	dir := t.TempDir()
	for i := range trials {
		path := filepath.Join(dir, fmt.Sprintf("out%d.st", i))
		var (
			wg   sync.WaitGroup
			errs [2]error
		)
		start := make(chan struct{})
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[w] = WriteFile(context.Background(), path, Options{}, writeString(fmt.Sprint("writer ", w)))
			}()
		}
		close(start)
		wg.Wait()
		won := -1
		for w, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("trial %d: both writers succeeded", i)
			case err == nil:
				won = w
			case !errors.Is(err, ErrExists) && !errors.Is(err, ErrBusy):
				t.Fatalf("trial %d: writer %d: %v", i, w, err)
			}
		}
		if won < 0 {
			t.Fatalf("trial %d: neither writer succeeded: %v", i, errs)
		}
		if b, _ := os.ReadFile(path); string(b) != fmt.Sprint("writer ", won) {
			t.Fatalf("trial %d: file holds %q, writer %d won", i, b, won)
		}
	}
	for _, e := range entries(t, dir) {
		if strings.HasPrefix(e, TempPrefix) {
			t.Errorf("temporary file %s left behind", e)
		}
	}
}

// The temporary file's name does not grow with the destination's, so the
// longest name the file system allows can be written.
func TestLongName(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{243, 255} {
		path := filepath.Join(dir, strings.Repeat("m", n-3)+".st")
		if err := WriteFile(context.Background(), path, Options{}, writeString("data")); err != nil {
			t.Errorf("%d-byte name: %v", n, err)
		}
	}
	if len(tempName(strings.Repeat("m", 255))) != len(tempName("")) {
		t.Error("temporary names differ in length")
	}
}

// A writer killed outright (SIGKILL) leaves its temporary file; the next
// write of the same destination removes it and succeeds. While a writer
// is alive, another one of the same destination is refused with ErrBusy.
// Files that are not this destination's temporary file are left alone.
func TestStaleTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.rkv")
	others := []string{
		TempPrefix + "0123456789abcdef.tmp",             // another destination's, stale
		"." + filepath.Base(path) + ".4a5b6c7d8e9f.tmp", // an older naming, or another program's
		"model.rkv.tmp",
	}
	for _, o := range others {
		must(t, os.WriteFile(filepath.Join(dir, o), []byte("not yours"), 0o644))
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "ATOMICFILE_HOLD="+path)
	out, err := child.StdoutPipe()
	must(t, err)
	must(t, child.Start())
	buf := make([]byte, 4096)
	n, _ := out.Read(buf)
	line := string(buf[:n])
	if !strings.HasPrefix(line, "writing ") {
		child.Process.Kill()
		t.Fatalf("child: %q", line)
	}
	tmp := strings.TrimSpace(strings.TrimPrefix(line, "writing "))

	if err := WriteFile(context.Background(), path, Options{}, writeString("second")); !errors.Is(err, ErrBusy) {
		t.Errorf("write while another is writing: %v, want ErrBusy", err)
	}
	must(t, child.Process.Signal(syscall.SIGKILL))
	child.Wait()
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("the killed writer left no temporary file (%v): the test shows nothing", err)
	}
	if err := WriteFile(context.Background(), path, Options{}, writeString("after")); err != nil {
		t.Fatalf("write after the killed one: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "after" {
		t.Errorf("content %q", b)
	}
	want := append(slices.Clone(others), "model.rkv")
	slices.Sort(want)
	if got := entries(t, dir); !slices.Equal(got, want) {
		t.Errorf("folder holds %q, want %q", got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
