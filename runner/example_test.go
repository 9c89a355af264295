package runner_test

import (
	"context"
	"fmt"
	"log"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/generate"
	_ "github.com/rwkvkit/rwkvkit/pth" // registers the .pth reader with format.Open
	"github.com/rwkvkit/rwkvkit/runner"
)

// Load a checkpoint, feed a prompt (a byte-level model: token = byte) and
// continue it greedily.
func Example() {
	src, err := format.Open("../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth")
	if err != nil {
		log.Fatal(err)
	}
	m, err := runner.Load(context.Background(), src)
	src.Close()
	if err != nil {
		log.Fatal(err)
	}
	info := m.Info()
	fmt.Printf("RWKV %s, %d layers, embedding %d, vocabulary %d\n", info.Version, info.Layers, info.Embed, info.Vocab)

	state, err := m.NewState()
	if err != nil {
		log.Fatal(err)
	}
	prompt := `"in`
	logits, err := m.Forward(state, byte2tokens(prompt), true) // one row per prompt token
	if err != nil {
		log.Fatal(err)
	}
	greedy := generate.Sampler{Temperature: 0}
	for t := range prompt {
		next := greedy.Sample(logits[t*info.Vocab : (t+1)*info.Vocab])
		fmt.Printf("after %-5q the most likely next byte is %q\n", prompt[:t+1], rune(next))
	}
	// Output:
	// RWKV 7, 12 layers, embedding 64, vocabulary 256
	// after "\""  the most likely next byte is ' '
	// after "\"i" the most likely next byte is 'n'
	// after "\"in" the most likely next byte is ' '
}

// Generate with a state that advances one token at a time.
func ExampleModel_Step() {
	m := tinyModel()
	state, err := m.NewState()
	if err != nil {
		log.Fatal(err)
	}
	logits, err := m.Forward(state, byte2tokens("The "), false)
	if err != nil {
		log.Fatal(err)
	}
	s := generate.Sampler{Temperature: 0.8, TopP: 0.9, Seed: 42}
	var out []byte
	for range 20 {
		tok := s.Sample(logits)
		out = append(out, byte(tok))
		if logits, err = m.Step(state, tok); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(len(out))
	// Output: 20
}

// Run several sequences in one batch: their rows share the matrix
// products, each has its own state, and each asks for its own logits.
func ExampleModel_Run() {
	m := tinyModel()
	prompts := []string{`"in`, "The cat", "x"}
	batch := make([]engine.Sequence, len(prompts))
	for i, p := range prompts {
		s, err := m.NewState()
		if err != nil {
			log.Fatal(err)
		}
		batch[i] = engine.Sequence{Tokens: byte2tokens(p), State: s, Output: engine.OutputLast}
	}
	batch[2].Output = engine.OutputNone // only advance this one
	if err := m.Run(context.Background(), batch); err != nil {
		log.Fatal(err)
	}
	greedy := generate.Sampler{Temperature: 0}
	for _, sq := range batch {
		if sq.Output == engine.OutputLast {
			fmt.Printf("after %q: %q\n", string(byteString(sq.Tokens)), rune(greedy.Sample(sq.Logits)))
		} else {
			fmt.Printf("%d logits\n", len(sq.Logits))
		}
	}
	// Output:
	// after "\"in": ' '
	// after "The cat": ' '
	// 0 logits
}

// tinyModel loads the tiny RWKV-7 as Example does.
func tinyModel() *runner.Model {
	src, err := format.Open("../fixtures/rwkv-tiny/tiny-rwkv-7v0-834K.pth")
	if err != nil {
		log.Fatal(err)
	}
	m, err := runner.Load(context.Background(), src)
	src.Close()
	if err != nil {
		log.Fatal(err)
	}
	return m
}

func byteString(t []int) []byte {
	var b []byte
	for _, x := range t {
		b = append(b, byte(x))
	}
	return b
}

func byte2tokens(s string) []int {
	var t []int
	for _, b := range []byte(s) {
		t = append(t, int(b))
	}
	return t
}
