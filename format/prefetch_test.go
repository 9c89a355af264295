package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
)

// Prefetched tensors read back exactly, in order or not, each source tensor
// is read once, and errors come back from the tensor they belong to.
func TestPrefetch(t *testing.T) {
	var opens atomic.Int32
	bad := errors.New("broken tensor")
	src := &Source{}
	for i := range 8 {
		data := bytes.Repeat([]byte{byte(i)}, 100+i)
		tn, err := NewTensor(fmt.Sprint("t", i), U8, []int64{int64(len(data))}, func() (io.ReadCloser, error) {
			opens.Add(1)
			if i == 6 {
				return nil, bad
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		src.Tensors = append(src.Tensors, tn)
	}
	p := Prefetch(src, 2)
	for _, i := range []int{0, 1, 2, 3, 4, 5, 7, 6} {
		b, err := p.Tensors[i].Bytes()
		if i == 6 {
			if !errors.Is(err, bad) {
				t.Errorf("tensor 6: %v, want its own error", err)
			}
			continue
		}
		if err != nil || !bytes.Equal(b, bytes.Repeat([]byte{byte(i)}, 100+i)) {
			t.Errorf("tensor %d: %v", i, err)
		}
	}
	if n := opens.Load(); n != 8 {
		t.Errorf("source tensors opened %d times, want 8", n)
	}
	if Prefetch(src, 0) != src {
		t.Error("depth 0 should return the source itself")
	}
}
