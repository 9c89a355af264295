package verify_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/tokenizer"
	"github.com/rwkvkit/rwkvkit/verify"
)

// Fed in chunks for progress, the tokens give the logits of one call bit
// for bit, on the tiny models of each kind of state; progress counts up to the total.
func TestLogitsInChunks(t *testing.T) {
	ctx := context.Background()
	n := 2*verify.ProgressChunk + 4 // three chunks, the last short
	ids := tokenizer.Bytes{}.Encode(strings.Repeat(verify.SampleText, n/len(verify.SampleText)+1)[:n])
	for _, m := range []string{"tiny-rwkv-4v0-660K", "tiny-rwkv-6v0-1m", "tiny-rwkv-7v0-834K"} {
		e, err := model.Load(ctx, "../fixtures/rwkv-tiny/"+m+".pth", device.CPU)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := verify.Logits(ctx, e, ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		var seen []int
		parts, err := verify.Logits(ctx, e, ids, &verify.LogitsOptions{Progress: func(done, total int) {
			if total != len(ids) {
				t.Errorf("total %d, want %d", total, len(ids))
			}
			seen = append(seen, done)
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seen, []int{verify.ProgressChunk, 2 * verify.ProgressChunk, len(ids)}) {
			t.Errorf("%s: progress %v", m, seen)
		}
		for i := range whole {
			for j := range whole[i] {
				if math.Float32bits(whole[i][j]) != math.Float32bits(parts[i][j]) {
					t.Fatalf("%s: position %d, logit %d: %v in chunks, %v at once", m, i, j, parts[i][j], whole[i][j])
				}
			}
		}
		// Stream hands out the same rows, a chunk at a time, in order.
		next := 0
		err = verify.Stream(ctx, e, ids, nil, func(start int, rows [][]float32) error {
			if start != next || len(rows) > verify.ProgressChunk {
				t.Fatalf("%s: %d rows from %d, want rows from %d, at most %d", m, len(rows), start, next, verify.ProgressChunk)
			}
			for i, row := range rows {
				if !slices.Equal(row, whole[start+i]) {
					t.Fatalf("%s: streamed position %d differs", m, start+i)
				}
			}
			next += len(rows)
			return nil
		})
		if err != nil || next != len(ids) {
			t.Errorf("%s: stream: %v, %d of %d rows", m, err, next, len(ids))
		}
		stop := errors.New("stop")
		if err := verify.Stream(ctx, e, ids, nil, func(int, [][]float32) error { return stop }); err != stop {
			t.Errorf("%s: the callback's error: %v", m, err)
		}
		e.Close()
	}
	if _, err := verify.Logits(ctx, nil, nil, nil); err == nil {
		t.Error("no tokens: no error")
	}
}
