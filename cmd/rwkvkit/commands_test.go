package main

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logits writes exactly the fixture's reference rows (to the runner's
// tolerance), and verify --expect passes on them and fails on altered ones.
func TestLogitsAndVerifyExpect(t *testing.T) {
	dir := t.TempDir()
	for _, m := range tinyModels {
		t.Run(m, func(t *testing.T) {
			out := filepath.Join(dir, m+".f32")
			if _, err := run(t, "logits", tiny+m+".pth", "--tokens", "34,105,110", "--out", out); err != nil {
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
			_, stderr, code := rwkvkit(t, "verify", tiny+m+".pth", "--tokens", "34,105,110",
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
			stdout, _, code := rwkvkit(t, "verify", tiny+m+".pth", "--tokens", "34,105,110",
				"--expect", altered, "--max-dlogit", "1e-4")
			if code != 1 || !strings.Contains(stdout, "FAILED") {
				t.Fatalf("verify against altered logits: exit %d, want 1\n%s", code, stdout)
			}
		})
	}
}

func TestVerifySelfAndPerturbed(t *testing.T) {
	m := tiny + "tiny-rwkv-7v0-834K.pth"
	out, err := run(t, "verify", m, "--ref", m, "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"mean_kl": 0,`, `"max_kl": 0,`, `"top1_agreement": 1,`, `"max_abs_dlogit": 0,`} {
		if !strings.Contains(out, want) {
			t.Errorf("self-verify lacks %s:\n%s", want, out)
		}
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

func TestRunIsReproducible(t *testing.T) {
	m := tiny + "tiny-rwkv-7v0-834K.pth"
	a, err := run(t, "run", m, "--prompt", "The ", "-n", "40", "--seed", "7")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := run(t, "run", m, "--prompt", "The ", "-n", "40", "--seed", "7")
	c, _ := run(t, "run", m, "--prompt", "The ", "-n", "40", "--seed", "8")
	if a != b || a == c || len(a) < 40 {
		t.Errorf("seeded runs: %q, %q, %q", a, b, c)
	}
	// Greedy decoding takes the argmax of the reference logits after "in.
	ref := floats(t, tiny+"tiny-rwkv-7v0-834K.quote_in.logits.f32")[2*256:]
	best := 0
	for i, v := range ref {
		if v > ref[best] {
			best = i
		}
	}
	greedy, err := run(t, "run", m, "--prompt", "\"in", "-n", "1", "--temperature", "0")
	if err != nil || greedy != string(rune(best))+"\n" {
		t.Errorf("greedy token %q (%v), want byte %d", greedy, err, best)
	}
}

func TestTokenize(t *testing.T) {
	out, err := run(t, "tokenize", "Hello, world!")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "33155,45,40213,34" { // from the vocabulary's published cases
		t.Errorf("tokenize: %q", out)
	}
	out, err = run(t, "tokenize", "--decode", "33155,45,40213,34")
	if err != nil || out != "Hello, world!" {
		t.Errorf("decode: %q, %v", out, err)
	}
}

func floats(t *testing.T, path string) []float32 {
	b := mustRead(t, path)
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
