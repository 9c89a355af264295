package runner

import (
	"context"
	"fmt"

	"github.com/rwkvkit/rwkvkit/engine"
	"github.com/rwkvkit/rwkvkit/format"
)

var _ engine.Engine = (*Model)(nil)

// maxChunk bounds the rows Run computes together (the tokens of all
// sequences of a pass), and so the memory of its activations; longer
// batches are fed in passes through the states.
const maxChunk = 512

// maxLogitBytes bounds the temporary logits of a pass whose rows go to
// several sequences; the head product runs on blocks of rows that fit.
const maxLogitBytes = 16 << 20

// ErrToken is wrapped by the error for a token outside the vocabulary.
var ErrToken = engine.ErrToken

// Step feeds one token to s (a state made by m) and returns the logits that
// predict the next one.
func (m *Model) Step(s engine.State, token int) ([]float32, error) {
	return m.Forward(s, []int{token}, false)
}

// Forward feeds tokens in order to s (a state made by m) and returns the
// logits after every token (len(tokens)×vocab, row-major) when allLogits is
// set, else only those after the last. It is Run on a batch of one, with
// fresh logits and no deadline.
func (m *Model) Forward(s engine.State, tokens []int, allLogits bool) ([]float32, error) {
	seq := engine.Sequence{Tokens: tokens, State: s, Output: engine.OutputLast}
	if allLogits {
		seq.Output = engine.OutputAll
	}
	batch := []engine.Sequence{seq}
	if err := m.Run(context.Background(), batch); err != nil {
		return nil, err
	}
	return batch[0].Logits, nil
}

// Run feeds every sequence of the batch its tokens and sets its Logits
// (reusing their backing arrays where large enough). The rows of all
// sequences are stacked into the same matrix products, up to 512 rows at a
// time; each sequence's recurrence runs token by token on its own state.
// ctx is checked between passes and layers; a cancelled Run leaves the
// states part-way.
func (m *Model) Run(ctx context.Context, batch []engine.Sequence) error {
	states, err := m.check(batch)
	if err != nil {
		return err
	}
	V := m.info.Vocab
	for i := range batch {
		n := 0
		switch batch[i].Output {
		case engine.OutputAll:
			n = len(batch[i].Tokens) * V
		case engine.OutputLast:
			n = V
		}
		batch[i].Logits = resize(batch[i].Logits, n)
	}
	done := make([]int, len(batch)) // tokens fed so far, per sequence
	a := &arena{}
	for {
		p := plan(batch, states, done)
		if p == nil {
			return nil
		}
		if err := m.runPass(ctx, p, batch, done, a); err != nil {
			return err
		}
		for j, i := range p.index {
			done[i] += p.start[j+1] - p.start[j]
		}
	}
}

// Close releases nothing: a Model is plain memory.
func (m *Model) Close() error { return nil }

func resize(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// check validates a batch before any state is touched.
func (m *Model) check(batch []engine.Sequence) ([]*State, error) {
	if err := engine.CheckBatch(batch, m.info.Vocab); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	states := make([]*State, len(batch))
	seen := make(map[*State]int, len(batch))
	for i := range batch {
		sq := &batch[i]
		s, err := m.state(sq.State)
		if err != nil {
			return nil, fmt.Errorf("%w (sequence %d)", err, i)
		}
		if j, dup := seen[s]; dup {
			return nil, fmt.Errorf("runner: sequences %d and %d share a state", j, i)
		}
		seen[s] = i
		states[i] = s
	}
	return states, nil
}

// A pass is one step of Run: the next tokens of the sequences that have
// some left, at most maxChunk rows in all, stacked in batch order.
type pass struct {
	T      int
	index  []int              // index[j] is the batch position of the pass's sequence j
	start  []int              // sequence j has rows [start[j], start[j+1])
	seq    []int32            // seq[t] is the sequence of row t
	tokens []int              // the token of every row
	states []*engine.Snapshot // per sequence
}

// plan shares maxChunk rows among the sequences with tokens left, evenly
// except where a sequence needs fewer; it returns nil when all are done.
func plan(batch []engine.Sequence, states []*State, done []int) *pass {
	alloc := make([]int, len(batch))
	var active []int
	for i := range batch {
		if done[i] < len(batch[i].Tokens) {
			active = append(active, i)
		}
	}
	if len(active) == 0 {
		return nil
	}
	for left := maxChunk; left > 0 && len(active) > 0; {
		share := max(1, left/len(active))
		next := active[:0]
		for _, i := range active {
			n := min(len(batch[i].Tokens)-done[i]-alloc[i], share, left)
			alloc[i] += n
			left -= n
			if done[i]+alloc[i] < len(batch[i].Tokens) {
				next = append(next, i)
			}
		}
		active = next
	}
	p := &pass{start: []int{0}}
	for i, n := range alloc {
		if n == 0 {
			continue
		}
		j := int32(len(p.index))
		p.index = append(p.index, i)
		p.states = append(p.states, &states[i].snap)
		p.tokens = append(p.tokens, batch[i].Tokens[done[i]:done[i]+n]...)
		for range n {
			p.seq = append(p.seq, j)
		}
		p.T += n
		p.start = append(p.start, p.T)
	}
	return p
}

// rows is the range of rows of the pass's sequence j.
func (p *pass) rows(j int) (int, int) { return p.start[j], p.start[j+1] }

// prev is the input before row t: the row before it in its sequence, or,
// for a sequence's first row, the state's shift (shift[j] for sequence j).
func (p *pass) prev(xs []float32, shift [][]float32, t, C int) []float32 {
	if j := p.seq[t]; t == p.start[j] {
		return shift[j]
	}
	return xs[(t-1)*C : t*C]
}

// of returns f of every sequence's state: its shift or memory of a layer.
func (p *pass) of(f func(s *engine.Snapshot) []float32) [][]float32 {
	out := make([][]float32, len(p.states))
	for j, s := range p.states {
		out[j] = f(s)
	}
	return out
}

// keepLast copies the last row of each sequence in xs into dst[j].
func (p *pass) keepLast(dst [][]float32, xs []float32, C int) {
	for j := range p.states {
		_, t1 := p.rows(j)
		copy(dst[j], xs[(t1-1)*C:t1*C])
	}
}

func (m *Model) runPass(ctx context.Context, p *pass, batch []engine.Sequence, done []int, a *arena) error {
	C, T := m.info.Embed, p.T
	x := make([]float32, T*C)
	row := make([]float32, C)
	for t, tok := range p.tokens {
		embedRow(m.emb, tok, row)
		layerNorm(x[t*C:(t+1)*C], row, m.ln0)
	}
	var vFirst []float32 // v7: layer 0's values, which later layers mix in
	if m.info.Version == format.V7 {
		vFirst = make([]float32, T*C)
	}
	for l := range m.layers {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("runner: %w", err)
		}
		a.reset()
		m.block(l, x, p, a, vFirst)
	}
	a.reset()
	m.passLogits(p, batch, done, x, a)
	return nil
}

// A logitGroup is a run of a pass's rows whose logits go to consecutive
// rows of one sequence's Logits.
type logitGroup struct {
	row, n int
	dst    []float32
}

// passLogits computes the logits the sequences of the pass want: head ·
// LN_out(x) for their rows. Rows for one sequence are written in place;
// rows for several go through a bounded buffer.
func (m *Model) passLogits(p *pass, batch []engine.Sequence, done []int, x []float32, a *arena) {
	C, V := m.info.Embed, m.info.Vocab
	var groups []logitGroup
	rows := 0
	for j, i := range p.index {
		t0, t1 := p.rows(j)
		sq := &batch[i]
		switch {
		case sq.Output == engine.OutputAll:
			groups = append(groups, logitGroup{t0, t1 - t0, sq.Logits[done[i]*V:]})
		case sq.Output == engine.OutputLast && done[i]+t1-t0 == len(sq.Tokens):
			groups = append(groups, logitGroup{t1 - 1, 1, sq.Logits})
		default:
			continue
		}
		rows += groups[len(groups)-1].n
	}
	if len(groups) == 0 {
		return
	}
	if len(groups) == 1 {
		g := groups[0]
		xn := a.get(g.n * C)
		layerNorms(xn, x[g.row*C:], m.lnOut, g.n, C)
		run(product{m: m.head, x: xn, ldx: C, out: g.dst, ldo: V, T: g.n})
		return
	}
	// Gather the rows, then compute them in blocks into out and scatter.
	xn := a.get(rows * C)
	r := 0
	for _, g := range groups {
		layerNorms(xn[r*C:], x[g.row*C:], m.lnOut, g.n, C)
		r += g.n
	}
	block := max(1, min(rows, maxLogitBytes/(4*V)))
	out := a.get(block * V)
	gi, gr := 0, 0 // the group of the next row to scatter, and its row in it
	for r0 := 0; r0 < rows; r0 += block {
		n := min(block, rows-r0)
		run(product{m: m.head, x: xn[r0*C:], ldx: C, out: out, ldo: V, T: n})
		for k := range n {
			copy(groups[gi].dst[gr*V:(gr+1)*V], out[k*V:(k+1)*V])
			if gr++; gr == groups[gi].n {
				gi, gr = gi+1, 0
			}
		}
	}
}
