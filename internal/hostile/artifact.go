package hostile

import (
	"fmt"
	"os"
	"slices"

	"github.com/rwkvkit/rwkvkit/serialize"
)

// CorruptArtifact flips one bit a third of the way into the payload of the
// tensor called name in the .rkv artifact at path, which must be stored as
// one chunk, and returns the damaged payload and the xxhash64 the index
// records for it, from which a test knows the exact error a reader gives.
func CorruptArtifact(path, name string) (payload []byte, recorded uint64, err error) {
	h, err := serialize.ReadHeaderFile(path)
	if err != nil {
		return nil, 0, err
	}
	i := slices.IndexFunc(h.Tensors, func(ti serialize.TensorInfo) bool { return ti.Name == name })
	if i < 0 {
		return nil, 0, fmt.Errorf("%s holds no tensor %q", path, name)
	}
	ti := h.Tensors[i]
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	payload = b[ti.Offset+5 : ti.Offset+5+ti.Length] // one chunk after its bin 32 header
	payload[len(payload)/3] ^= 0x10
	return payload, ti.XXHash64, os.WriteFile(path, b, 0o644)
}
