package pth

import (
	"testing"

	"github.com/rwkvkit/rwkvkit/internal/hostile"
)

// pk writes protocol-2 pickles opcode by opcode (package hostile).
type pk = hostile.Pickle

func newPickle() *pk { return hostile.NewPickle() }

type tensorSpec = hostile.TensorSpec

func stateDict(ts ...tensorSpec) []byte { return hostile.StateDict(ts...) }

type record = hostile.Record

// buildZip writes a zip of stored records, or deflated ones if deflate.
func buildZip(t testing.TB, deflate bool, recs ...record) []byte {
	return hostile.Zip(deflate, recs...)
}

// checkpoint is a zip checkpoint under archive/ with the given pickle and
// storages data/<key>.
func checkpoint(t testing.TB, pkl []byte, storages map[string][]byte) []byte {
	return hostile.Checkpoint(pkl, storages)
}

// f32 returns the little-endian bytes of 0, 1, …, n-1 as float32.
func f32(n int) []byte { return hostile.F32(n) }
