package tokenizer_test

import (
	"fmt"
	"os"

	"github.com/rwkvkit/rwkvkit/tokenizer"
)

func ExampleWorld() {
	tok := tokenizer.World()
	ids := tok.Encode("Hello, world!")
	fmt.Println(ids)
	text, err := tok.Decode(ids)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", text)
	// Output:
	// [33155 45 40213 34]
	// Hello, world!
}

func ExampleStreamDecoder() {
	// The emoji arrive as three tokens each; neither is written until
	// its last byte is there.
	d := tokenizer.NewStreamDecoder(tokenizer.World(), os.Stdout)
	for _, id := range []int{34295, 33, 3319, 153, 129, 3319, 155, 129, 30666} {
		if err := d.WriteToken(id); err != nil {
			panic(err)
		}
	}
	if err := d.Flush(); err != nil {
		panic(err)
	}
	fmt.Println()
	// Output: emoji 😀🚀 done
}

func ExampleBytes() {
	var tok tokenizer.Tokenizer = tokenizer.Bytes{}
	fmt.Println(tok.Encode("hé"), tok.VocabSize())
	// Output: [104 195 169] 256
}
