package format

import (
	"fmt"
	"testing"
)

// BenchmarkTranspose transposes the float16 low-rank matrices of a
// 1024-wide RWKV-7 layer (1024 × 64 and 64 × 1024).
func BenchmarkTranspose(b *testing.B) {
	for _, sz := range [][2]int{{1024, 64}, {64, 1024}} {
		src := make([]byte, sz[0]*sz[1]*2)
		dst := make([]byte, len(src))
		b.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				transpose(dst, src, sz[0], sz[1], 2)
			}
		})
		b.Run(fmt.Sprintf("%dx%d/per-element-copy", sz[0], sz[1]), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			rows, cols := sz[0], sz[1]
			for b.Loop() {
				for i := range rows {
					for j := range cols {
						copy(dst[(j*rows+i)*2:(j*rows+i+1)*2], src[(i*cols+j)*2:])
					}
				}
			}
		})
	}
}
