package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

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
