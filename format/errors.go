package format

import (
	"errors"
	"fmt"
	"io"
)

// A TensorError records an error about one tensor — reading its bytes, or
// what they or its shape turned out to be — with the file it is in, as
// os.PathError does for a path. Readers of tensors return one, so that
// callers can tell which tensor of which file failed (errors.As) and
// messages name the tensor once.
type TensorError struct {
	File   string // the file holding the tensor; empty when not known
	Tensor string
	Err    error
}

func (e *TensorError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("tensor %s: %v", Quote(e.Tensor), e.Err)
	}
	return fmt.Sprintf("%s: tensor %s: %v", e.File, Quote(e.Tensor), e.Err)
}

func (e *TensorError) Unwrap() error { return e.Err }

// TensorErr returns err as an error about the tensor called name: err
// itself when it is already about that tensor (it is or wraps a
// *TensorError naming it), otherwise a *TensorError.
func TensorErr(name string, err error) error {
	if err == nil {
		return nil
	}
	var te *TensorError
	if errors.As(err, &te) && te.Tensor == name {
		return err
	}
	return &TensorError{Tensor: name, Err: err}
}

// InFile returns err as an error of the file at path: err itself when it
// already names the file (it wraps a *TensorError of that file), otherwise
// err after "path: ".
func InFile(path string, err error) error {
	var te *TensorError
	if errors.As(err, &te) && te.File == path {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// inFile makes the errors of t's reads *TensorErrors naming file.
func (t *Tensor) inFile(file string) {
	open := t.open
	if open == nil {
		return
	}
	fail := func(err error) error {
		if te, ok := err.(*TensorError); ok && te.Tensor == t.Name {
			if te.File != "" {
				return te
			}
			c := *te
			c.File = file
			return &c
		}
		return &TensorError{File: file, Tensor: t.Name, Err: err}
	}
	t.open = func() (io.ReadCloser, error) {
		r, err := open()
		if err != nil {
			return nil, fail(err)
		}
		if ra, ok := r.(io.ReaderAt); ok {
			return &fileReaderAt{fileReader{r, fail}, ra}, nil
		}
		return &fileReader{r, fail}, nil
	}
}

type fileReader struct {
	r    io.ReadCloser
	fail func(error) error
}

func (f *fileReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF {
		err = f.fail(err)
	}
	return n, err
}

func (f *fileReader) Close() error { return f.r.Close() }

// fileReaderAt is a fileReader of a reader that reads at any offset too.
type fileReaderAt struct {
	fileReader
	ra io.ReaderAt
}

func (f *fileReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.ra.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = f.fail(err)
	}
	return n, err
}
