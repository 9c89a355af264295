package tokenizer

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// benchText is about 1 MB: the reference cases repeated (mostly English and
// code), and random multilingual text.
func benchText(b testing.TB, multilingual bool) string {
	if multilingual {
		return randomText(rand.New(rand.NewPCG(5, 6)), 1<<20, false)
	}
	var sb strings.Builder
	for sb.Len() < 1<<20 {
		for _, c := range readCases(b) {
			sb.WriteString(c.Text)
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

func BenchmarkEncode(b *testing.B) {
	v := World()
	for _, bc := range []struct {
		name  string
		multi bool
	}{{"cases", false}, {"multilingual", true}} {
		b.Run(bc.name, func(b *testing.B) {
			text := benchText(b, bc.multi)
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				v.Encode(text)
			}
		})
	}
}

func BenchmarkLoadWorld(b *testing.B) {
	b.SetBytes(int64(len(worldText)))
	for b.Loop() {
		if _, err := loadText(strings.NewReader(worldText), len(worldText)); err != nil {
			b.Fatal(err)
		}
	}
}
