package format

import (
	"errors"
	"io"
	"testing"
)

// Reading a computed tensor whole hands over the bytes its opener made,
// not a copy; bytes that do not match the tensor's size are still short
// data; a computed reader reads as any other.
func TestComputedBytes(t *testing.T) {
	var made []byte
	tn, err := NewTensor("w", U8, []int64{1000}, func() (io.ReadCloser, error) {
		made = make([]byte, 1000)
		made[999] = 7
		return Computed(made), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tn.Bytes()
	if err != nil || len(b) != 1000 || &b[0] != &made[0] {
		t.Errorf("Bytes of a computed tensor: %d bytes (%v), a copy: %v", len(b), err, len(b) > 0 && &b[0] != &made[0])
	}
	r, _ := tn.Open()
	if all, err := io.ReadAll(r); err != nil || len(all) != 1000 || all[999] != 7 {
		t.Errorf("reading a computed tensor: %d bytes, %v", len(all), err)
	}
	short, _ := NewTensor("s", U8, []int64{10}, func() (io.ReadCloser, error) { return Computed(make([]byte, 9)), nil })
	if _, err := short.Bytes(); !errors.Is(err, ErrShortData) {
		t.Errorf("9 computed bytes for 10: %v, want ErrShortData", err)
	}
}

// transpose moves every element of every size to its transposed place,
// across tile edges and for matrices smaller than a tile.
func TestTranspose(t *testing.T) {
	for _, es := range []int{1, 2, 4, 8} {
		for _, sz := range [][2]int{{1, 1}, {1, 7}, {3, 5}, {33, 70}, {64, 31}, {100, 1}} {
			rows, cols := sz[0], sz[1]
			src := make([]byte, rows*cols*es)
			for i := range src {
				src[i] = byte(i*7 + i/251)
			}
			dst := make([]byte, len(src))
			transpose(dst, src, rows, cols, es)
			for i := range rows {
				for j := range cols {
					got := dst[(j*rows+i)*es : (j*rows+i+1)*es]
					want := src[(i*cols+j)*es : (i*cols+j+1)*es]
					if string(got) != string(want) {
						t.Fatalf("%d-byte %d×%d: element (%d, %d) is %v at its transposed place, want %v", es, rows, cols, i, j, got, want)
					}
				}
			}
		}
	}
}
