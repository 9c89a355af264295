package logits

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixture's reference logits (numpy float32 written by the RWKV-LM
// reference code) read as Python's struct.unpack("<768f") reads them, and
// each row's most likely next byte is the one the reference model predicts
// after `"`, `"i` and `"in`: a space, 'n', a space.
func TestReadFixture(t *testing.T) {
	path := "../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.quote_in.logits.f32"
	rows, err := ReadFile(path, 3, 256)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		row, col int
		want     float32
	}{{0, 0, 0.2833441495895386}, {0, 1, -0.08495282381772995}, {2, 255, -0.9542819261550903}} {
		if got := rows[c.row][c.col]; got != c.want {
			t.Errorf("row %d, column %d: %v, want %v", c.row, c.col, got, c.want)
		}
	}
	for r, want := range []int{' ', 'n', ' '} {
		best := 0
		for i, v := range rows[r] {
			if v > rows[r][best] {
				best = i
			}
		}
		if best != want {
			t.Errorf("row %d: argmax %d, want %d", r, best, want)
		}
	}
	if _, err := ReadFile(path, 4, 256); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "3072 bytes") {
		t.Errorf("wrong shape: %v, want an error naming the file and its size", err)
	}
}

// What WriteFile writes, ReadFile reads back bit for bit, NaN and
// infinities included, across the write buffer's boundary.
func TestRoundTrip(t *testing.T) {
	const vocab, n = bufValues + 100, 3 // rows longer than the write buffer
	flat := make([]float32, n*vocab)
	for i := range flat {
		flat[i] = float32(i%977) * -0.125
	}
	flat[3] = float32(math.NaN())
	flat[bufValues] = float32(math.Inf(-1))
	flat[len(flat)-1] = math.MaxFloat32
	path := filepath.Join(t.TempDir(), "l.f32")
	if err := WriteFile(context.Background(), path, Rows(flat, vocab), false); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != int64(4*len(flat)) {
		t.Fatalf("file %v, %v; want %d bytes", fi, err, 4*len(flat))
	}
	rows, err := ReadFile(path, n, vocab)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range flat {
		if got := rows[i/vocab][i%vocab]; math.Float32bits(got) != math.Float32bits(v) {
			t.Fatalf("value %d: %v, wrote %v", i, got, v)
		}
	}
	if err := WriteFile(context.Background(), path, Rows(flat, vocab), false); err == nil {
		t.Error("replaced an existing file without force")
	}
}

// A File reads rows at any position as ReadFile reads them whole, and
// refuses rows past its end and rows of another length.
func TestReadRows(t *testing.T) {
	path := "../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.quote_in.logits.f32"
	whole, err := ReadFile(path, 3, 256)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, 3, 256)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dst := Rows(make([]float32, 2*256), 256)
	if err := f.ReadRows(1, dst); err != nil {
		t.Fatal(err)
	}
	for i := range dst {
		for j := range dst[i] {
			if dst[i][j] != whole[1+i][j] {
				t.Fatalf("row %d, column %d: %v, want %v", 1+i, j, dst[i][j], whole[1+i][j])
			}
		}
	}
	if err := f.ReadRows(2, dst); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("rows 2…3 of 3: %v, want an error naming the file", err)
	}
	if err := f.ReadRows(0, [][]float32{make([]float32, 255)}); err == nil {
		t.Error("a row of 255 values: no error")
	}
}
