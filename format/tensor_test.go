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
