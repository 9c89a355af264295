package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"testing"
)

// A cast's memory follows its tensor: an empty or small tensor costs a few
// hundred bytes to open, read and close, not a 64 Ki-element buffer, so a
// file of a million empty tensors converts in memory and time that follow
// its size.
func TestCastCostFollowsTensor(t *testing.T) {
	const n = 5000
	src := &Source{}
	for i := range n {
		shape := []int64{0}
		if i%2 == 1 {
			shape = []int64{3}
		}
		tn, err := NewTensor("t", F32, shape, BytesOpener(make([]byte, 4*shape[0])))
		if err != nil {
			t.Fatal(err)
		}
		src.Tensors = append(src.Tensors, tn)
	}
	cast, err := CastF16(src)
	if err != nil {
		t.Fatal(err)
	}
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	for _, tn := range cast.Tensors {
		r, err := tn.Open()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || int64(len(got)) != tn.Size() {
			t.Fatalf("read %d bytes (%v), want %d", len(got), err, tn.Size())
		}
		r.Close()
	}
	runtime.ReadMemStats(&b)
	if per := (b.TotalAlloc - a.TotalAlloc) / n; per > 1024 {
		t.Errorf("%d bytes allocated per small tensor cast", per)
	}
}

// Casts of large tensors reuse their buffers, and a cast reads the same
// values whether its buffers are new or reused.
func TestCastPooledBuffers(t *testing.T) {
	vals := make([]byte, 4*(castChunk*2+5))
	for i := 0; i < len(vals); i += 4 {
		v := math.Float32bits(float32(i/4) * 0.25)
		vals[i], vals[i+1], vals[i+2], vals[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	tn, err := NewTensor("big", F32, []int64{int64(len(vals) / 4)}, BytesOpener(vals))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(vals)/2)
	if err := ConvertToF16(want, vals, F32); err != nil {
		t.Fatal(err)
	}
	cast, _ := CastF16(&Source{Tensors: []*Tensor{tn}})
	var a, b runtime.MemStats
	for i := range 4 {
		if i == 1 {
			runtime.ReadMemStats(&a)
		}
		r, err := cast.Tensors[0].Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("pass %d: cast differs (%v)", i, err)
		}
	}
	runtime.ReadMemStats(&b)
	if raceEnabled {
		t.Log("race detector on: sync.Pool drops buffers, the allocation bound is not checked")
		return
	}
	// io.ReadAll's own buffer is the tensor's size; the cast's buffers come back from the pool.
	if per := (b.TotalAlloc - a.TotalAlloc) / 3; per > uint64(4*len(want)) {
		t.Errorf("%d bytes allocated per pass over a %d-byte cast", per, len(want))
	}
}

// A cast of a tensor whose reader reads at any offset reads at any offset
// too, odd ones and pieces across its chunks included, from several
// goroutines at once, the same bytes as the whole cast; past its end it
// says io.EOF, and over source data that ends early, ErrShortData.
func TestCastReadAt(t *testing.T) {
	for _, dt := range []DType{F32, BF16} {
		t.Run(dt.String(), func(t *testing.T) {
			n := castChunk*3 + 7
			vals := make([]byte, n*dt.Size())
			for i := range n {
				v := math.Float32bits(float32(i%5000)*0.37 - 900)
				if dt == BF16 {
					vals[2*i], vals[2*i+1] = byte(v>>16), byte(v>>24)
				} else {
					vals[4*i], vals[4*i+1], vals[4*i+2], vals[4*i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
				}
			}
			want := make([]byte, 2*n)
			if err := ConvertToF16(want, vals, dt); err != nil {
				t.Fatal(err)
			}
			tn, err := NewTensor("t", dt, []int64{int64(n)}, func() (io.ReadCloser, error) {
				return Section(bytes.NewReader(vals), 0, int64(len(vals))), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			cast, _ := CastF16(&Source{Tensors: []*Tensor{tn}})
			r, err := cast.Tensors[0].Open()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ra, ok := r.(io.ReaderAt)
			if !ok {
				t.Fatal("the cast of a Section does not read at offsets")
			}
			size := 2 * n
			cases := [][2]int{{0, size}, {1, 2}, {1, 1}, {3, 2*castChunk + 5}, {2*castChunk - 1, 4}, {size - 3, 3}, {size - 1, 5}, {size, 1}, {size + 10, 1}, {0, 0}}
			errs := make(chan error, len(cases))
			for _, c := range cases {
				go func() {
					off, l := c[0], c[1]
					p := make([]byte, l)
					got, err := ra.ReadAt(p, int64(off))
					end := min(off+l, size)
					wantN := max(end-off, 0)
					switch {
					case got != wantN:
						err = fmt.Errorf("ReadAt(%d bytes, %d): %d bytes (%v), want %d", l, off, got, err, wantN)
					case off+l > size && err != io.EOF:
						err = fmt.Errorf("ReadAt(%d bytes, %d) past the end: %v, want io.EOF", l, off, err)
					case off+l <= size && err != nil:
						err = fmt.Errorf("ReadAt(%d bytes, %d): %v", l, off, err)
					case got > 0 && !bytes.Equal(p[:got], want[off:off+got]):
						err = fmt.Errorf("ReadAt(%d bytes, %d): bytes differ from the cast's", l, off)
					default:
						err = nil
					}
					errs <- err
				}()
			}
			for range cases {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			short, _ := NewTensor("short", dt, []int64{int64(n)}, func() (io.ReadCloser, error) {
				return Section(bytes.NewReader(vals), 0, int64(len(vals)-1)), nil
			})
			cast, _ = CastF16(&Source{Tensors: []*Tensor{short}})
			sr, _ := cast.Tensors[0].Open()
			if _, err := sr.(io.ReaderAt).ReadAt(make([]byte, 8), int64(size-8)); !errors.Is(err, ErrShortData) {
				t.Errorf("reading past the source's end: %v, want ErrShortData", err)
			}
		})
	}
}
