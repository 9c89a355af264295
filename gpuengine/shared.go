package gpuengine

import (
	"fmt"

	"github.com/rwkvkit/rwkvkit/format"
)

// A shareKey is what makes matrices one upload: the same bytes of their
// file (format.Tensor.Region), dtype and shape.
type shareKey struct {
	region, shape string
	dtype         format.DType
}

// sharedSpecs returns, for each spec, the index of an earlier one whose
// matrix it shares (tied embedding and head, layers saved as views of one
// another's storages), or −1: the GPU holds a file's distinct matrices
// once, as the CPU engine does. Vectors are not shared: they are a few
// kilobytes a layer, and the kernels that read a layer's vectors bind one
// arena, the layer's.
func sharedSpecs(specs []tensorSpec, tensors []*format.Tensor) []int {
	same := make([]int, len(specs))
	first := map[shareKey]int{}
	for i, s := range specs {
		same[i] = -1
		t := tensors[i]
		if s.n > 0 || t.Region == "" {
			continue
		}
		k := shareKey{t.Region, fmt.Sprint(t.Shape), t.DType}
		if j, ok := first[k]; ok {
			same[i] = j
		} else {
			first[k] = i
		}
	}
	return same
}
