package format

import "errors"

// ErrBudget is wrapped by the error of a reader that refuses a file because
// reading it would take more memory than a file of its size may.
var ErrBudget = errors.New("needs more memory than a file of its size")

// A Budget is the memory a reader may allocate for one file: a number of
// bytes per byte of the file, plus a slack for small files. A reader whose
// allocations follow what a file declares (counts, lengths, nested values)
// charges each one before making it, so a hostile file is refused when it
// reaches the budget rather than when memory runs out. The zero Budget
// allows nothing.
type Budget struct{ left int64 }

// NewBudget returns the budget of a file of size bytes: perByte bytes per
// byte, plus slack.
func NewBudget(size, perByte, slack int64) *Budget {
	return &Budget{left: perByte*max(size, 0) + slack}
}

// Charge takes an allocation of n bytes from the budget, rounded up the way
// Go's allocator rounds it, and returns ErrBudget once the budget is spent.
func (b *Budget) Charge(n int64) error {
	b.left -= AllocSize(n)
	if b.left < 0 {
		return ErrBudget
	}
	return nil
}

// Left is what the budget still allows.
func (b *Budget) Left() int64 { return b.left }

// AllocSize is what an allocation of n bytes takes from the heap: Go's
// size classes round to a multiple of 16 up to 256 bytes, and by at most
// an eighth beyond.
func AllocSize(n int64) int64 {
	if n <= 256 {
		return (n + 15) &^ 15
	}
	return n + n>>3
}
