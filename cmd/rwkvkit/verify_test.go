package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/rwkvkit/rwkvkit/device"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/tokenizer"
	"github.com/rwkvkit/rwkvkit/verify"
)

// verify --json says whether it passed, gives top-1 agreement in percent
// as the text does, and writes < and > as they are.
func TestVerifyJSON(t *testing.T) {
	m, other := tiny+"tiny-rwkv-7v0-834K.pth", tiny+"tiny-rwkv-6v0-1m.pth"
	out, _, err := runStdin(t, "", "verify", other, "--ref", m, "--json", "--max-kl", "0.01", "--min-top1", "99.5")
	if err == nil {
		t.Fatal("a different model passed")
	}
	var r verify.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Passed || len(r.Failed) != 2 || r.Metrics.Top1Percent <= 0 || r.Metrics.Top1Percent >= 99.5 {
		t.Errorf("%+v", r)
	}
	if !strings.Contains(out, `"passed": false`) || !strings.Contains(out, " > 0.01") || !strings.Contains(out, "% < 99.5%") || strings.Contains(out, `\u003`) {
		t.Errorf("JSON:\n%s", out)
	}
	text, _, _ := runStdin(t, "", "verify", other, "--ref", m)
	if want := fmt.Sprintf("top-1 agreement:  %.2f%%", r.Metrics.Top1Percent); !strings.Contains(text, want) {
		t.Errorf("text lacks the JSON's figure, %q:\n%s", want, text)
	}
}

// verify says how fast each model ran, on stderr.
func TestVerifySpeed(t *testing.T) {
	m := tiny + "tiny-rwkv-7v0-834K.pth"
	_, stderr, err := runStdin(t, "", "verify", m, "--ref", m)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m) + `: 352 tokens in [0-9.]+ s \([0-9.]+ tokens/s\)$`)
	if n := len(re.FindAllString(stderr, -1)); n != 2 {
		t.Errorf("%d speed lines, want 2 (model and reference):\n%s", n, stderr)
	}
}

// logits writes exactly the fixture's reference rows (to the runner's
// tolerance), and verify --expect passes on them and fails on altered ones.
func TestLogitsAndVerifyExpect(t *testing.T) {
	dir := t.TempDir()
	for _, m := range tinyModels {
		t.Run(m, func(t *testing.T) {
			out := filepath.Join(dir, m+".f32")
			if _, err := run(t, "logits", tiny+m+".pth", "--tokens", "34,105,110", "--out", out, "--device", "cpu"); err != nil {
				t.Fatal(err)
			}
			got, want := floats(t, out), floats(t, tiny+m+".quote_in.logits.f32")
			if len(got) != 3*256 || len(want) != 3*256 {
				t.Fatalf("%d logits, want %d", len(got), 3*256)
			}
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4 { // the runner's bound from .pth
					t.Fatalf("logit %d: %v vs reference %v", i, got[i], want[i])
				}
			}
			_, stderr, code := rwkvkit(t, "verify", tiny+m+".pth", "--device", "cpu", "--tokens", "34,105,110",
				"--expect", tiny+m+".quote_in.logits.f32", "--max-dlogit", "1e-4", "--min-top1", "100")
			if code != 0 {
				t.Fatalf("verify against the fixture: exit %d: %s", code, stderr)
			}
			altered := filepath.Join(dir, m+".altered.f32")
			b := mustRead(t, tiny+m+".quote_in.logits.f32")
			v := math.Float32frombits(binary.LittleEndian.Uint32(b[4*300:]))
			binary.LittleEndian.PutUint32(b[4*300:], math.Float32bits(v+0.01))
			if err := os.WriteFile(altered, b, 0o644); err != nil {
				t.Fatal(err)
			}
			stdout, _, code := rwkvkit(t, "verify", tiny+m+".pth", "--device", "cpu", "--tokens", "34,105,110",
				"--expect", altered, "--max-dlogit", "1e-4")
			if code != 1 || !strings.Contains(stdout, "FAILED") {
				t.Fatalf("verify against altered logits: exit %d, want 1\n%s", code, stdout)
			}
		})
	}
}

func TestVerifySelfAndPerturbed(t *testing.T) {
	m := tiny + "tiny-rwkv-7v0-834K.pth"
	out, err := runStdout(t, "verify", m, "--ref", m, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var self verify.Report
	if err := json.Unmarshal([]byte(out), &self); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if mt := self.Metrics; mt.MeanKL != 0 || mt.MaxKL != 0 || mt.Top1Percent != 100 || mt.MaxAbsDiff != 0 || !self.Passed {
		t.Errorf("self-verify is not exact:\n%s", out)
	}
	// The float16 conversion of the same model is close but not identical.
	st := tiny + "st/tiny-rwkv-7v0-834K.st"
	if _, err := run(t, "verify", st, "--ref", m, "--max-kl", "1e-6", "--min-top1", "99"); err != nil {
		t.Errorf("float16 model against its source: %v", err)
	}
	// Another model is far from it: the thresholds catch it (exit status 1).
	_, _, code := rwkvkit(t, "verify", tiny+"tiny-rwkv-6v0-1m.pth", "--ref", m, "--max-kl", "0.01")
	if code != 1 {
		t.Errorf("a different model passed verify: exit %d", code)
	}
}

// Over more positions than a chunk of either way the rows are compared (the
// model's through a temporary file, expected logits read from theirs),
// verify reports what comparing every row held at once gives, exactly.
func TestVerifyStreamedEqualsWhole(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	text := strings.Repeat(verify.SampleText, 2*verify.ProgressChunk/len(verify.SampleText)+1)[:2*verify.ProgressChunk+100]
	textFile := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(textFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ids := tokenizer.Bytes{}.Encode(text)
	m, other := tiny+"tiny-rwkv-7v0-834K.pth", tiny+"tiny-rwkv-6v0-1m.pth"
	rowsOf := func(path string) [][]float32 {
		e, err := model.Load(ctx, path, device.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		rows, err := verify.Logits(ctx, e, ids, &verify.LogitsOptions{Progress: func(int, int) {}})
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	want, err := verify.Compare(rowsOf(other), rowsOf(m), ids, false)
	if err != nil {
		t.Fatal(err)
	}
	expected := filepath.Join(dir, "ref.f32")
	if _, err := run(t, "logits", m, "--device", "cpu", "--text-file", textFile, "--out", expected); err != nil {
		t.Fatal(err)
	}
	for _, refArgs := range [][]string{{"--ref", m}, {"--expect", expected}} {
		args := append([]string{"verify", other, "--device", "cpu", "--text-file", textFile, "--json"}, refArgs...)
		out, err := run(t, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", refArgs, err, out)
		}
		var r verify.Report
		if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !reflect.DeepEqual(r.Metrics, want) || r.Tokens != len(ids) {
			t.Errorf("%v: %d tokens, %+v; every row at once: %+v", refArgs, r.Tokens, r.Metrics, want)
		}
	}
}
