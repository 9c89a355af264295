package convert_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/rwkvkit/rwkvkit/convert"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/internal/hostile"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/serialize"
)

// Converting a corrupt artifact, to .st or to .gguf, fails naming the
// output, the input and the damaged tensor once each, and leaves no output.
func TestConvertCorruptArtifact(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "tiny.rkv")
	src, err := model.Open("../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth")
	if err != nil {
		t.Fatal(err)
	}
	err = serialize.WriteFile(context.Background(), in, src, false, nil)
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	const victim = "blocks.4.att.key.weight"
	payload, recorded, err := hostile.CorruptArtifact(in, victim)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ out, writer string }{{"out.st", "safetensors"}, {"out.gguf", "gguf"}} {
		out := filepath.Join(dir, c.out)
		_, err := convert.File(context.Background(), in, out, nil)
		want := fmt.Sprintf("%s: %s: %s: tensor %q: rkv: checksum mismatch: payload xxhash64 %016x, index says %016x",
			out, c.writer, in, victim, xxhash.Sum64(payload), recorded)
		if err == nil || err.Error() != want {
			t.Errorf("%s: error\n%v\nwant\n%s", c.out, err, want)
		}
		var te *format.TensorError
		if !errors.As(err, &te) || te.File != in || te.Tensor != victim || !errors.Is(err, serialize.ErrChecksum) {
			t.Errorf("%s: errors.As: %+v; errors.Is(ErrChecksum) = %v", c.out, te, errors.Is(err, serialize.ErrChecksum))
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", c.out, err)
		}
	}
}
