package format

import (
	"errors"
	"testing"
)

func TestBudget(t *testing.T) {
	for _, tc := range []struct{ n, want int64 }{
		{0, 0}, {1, 16}, {16, 16}, {17, 32}, {256, 256}, {257, 289}, {1 << 20, 1<<20 + 1<<17},
	} {
		if got := AllocSize(tc.n); got != tc.want {
			t.Errorf("AllocSize(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
	b := NewBudget(100, 10, 24) // 1024 bytes
	for i := range 4 {
		if err := b.Charge(256); err != nil {
			t.Fatalf("charge %d of 256 bytes: %v", i, err)
		}
	}
	if b.Left() != 0 {
		t.Errorf("left %d, want 0", b.Left())
	}
	if err := b.Charge(1); !errors.Is(err, ErrBudget) {
		t.Errorf("charge past the budget: %v, want ErrBudget", err)
	}
	if err := NewBudget(-5, 10, 0).Charge(1); !errors.Is(err, ErrBudget) {
		t.Errorf("a negative size gets a budget: %v", err)
	}
}
