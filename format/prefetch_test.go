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
	p := Prefetch(src, 250) // two of these tensors at a time
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
		t.Error("budget 0 should return the source itself")
	}
}

// A tensor larger than the budget is not read ahead: it is opened only when
// asked for, and streams.
func TestPrefetchBudget(t *testing.T) {
	var opened [3]atomic.Bool
	src := &Source{}
	for i, n := range []int{10, 1000, 10} {
		tn, err := NewTensor(fmt.Sprint("t", i), U8, []int64{int64(n)}, func() (io.ReadCloser, error) {
			opened[i].Store(true)
			return io.NopCloser(bytes.NewReader(make([]byte, n))), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		src.Tensors = append(src.Tensors, tn)
	}
	p := Prefetch(src, 100)
	if _, err := p.Tensors[0].Bytes(); err != nil {
		t.Fatal(err)
	}
	if opened[1].Load() || opened[2].Load() {
		t.Error("read ahead past a tensor larger than the budget")
	}
	if _, err := p.Tensors[1].Bytes(); err != nil || !opened[1].Load() {
		t.Fatalf("large tensor: %v", err)
	}
}
