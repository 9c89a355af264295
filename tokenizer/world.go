package tokenizer

import (
	_ "embed"
	"strings"
	"sync"
)

// The RWKV World vocabulary, Apache-2.0, from BlinkDL's ChatRWKV and
// RWKV-LM repositories; see NOTICE.md.
//
//go:embed rwkv_vocab_v20230424.txt
var worldText string

var world = sync.OnceValue(func() *Vocab {
	v, err := loadText(strings.NewReader(worldText), len(worldText))
	if err != nil {
		// The embedded file is fixed at build time and checked by the
		// tests; failing here is a build defect, not bad input.
		panic("tokenizer: embedded World vocabulary: " + err.Error())
	}
	return v
})

// World returns the RWKV World tokenizer (rwkv_vocab_v20230424, ids up to
// 65529), parsed from the copy embedded in the binary on first use.
func World() *Vocab { return world() }
