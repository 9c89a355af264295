package tokenizer

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// A Vocab is a greedy longest-match tokenizer, the one RWKV World models
// use: at each position of the text it takes the longest token whose bytes
// match there. It is immutable and safe for concurrent use.
type Vocab struct {
	data []byte   // token bytes, concatenated in id order
	off  []uint32 // token id i is data[off[i]:off[i+1]]; unassigned ids are empty

	// The trie over all tokens' bytes. Node 0 is the root; its children are
	// also kept in root, indexed by byte, because every match starts there.
	nodes  []node
	labels []byte   // edge bytes; each node's edges are a sorted run
	child  []uint32 // node each edge leads to
	root   [256]uint32
	sets   []byteSet // edge sets of nodes with many edges
}

// A byteSet is the set of a node's edge bytes, so that finding an edge
// is a rank query instead of a search; a few hundred nodes near the root
// have dozens to hundreds of edges and are visited most.
type byteSet struct {
	bits   [4]uint64
	before [4]uint32 // edges in the words before each word
}

// manyEdges is the edge count above which a node gets a byteSet; below
// it a linear scan is as fast.
const manyEdges = 8

type node struct {
	id    int32  // token ending at this node, -1 if none
	first uint32 // index of the node's first edge in labels/child
	n     uint32 // number of edges
	set   uint32 // 1 + index in sets, or 0 for a node with few edges
}

// entry is one token while a vocabulary is being built.
type entry struct {
	id         int32
	start, end uint32 // bytes in the parser's buffer, then in Vocab.data
	key        uint64 // first eight bytes, for sorting
}

func prefixKey(b []byte) uint64 {
	var k uint64
	for i := range 8 {
		k <<= 8
		if i < len(b) {
			k |= uint64(b[i])
		}
	}
	return k
}

// maxID bounds the ids a vocabulary file may use, so that a corrupt id
// cannot make the id table huge; maxBytes bounds the total token bytes,
// which offsets hold as uint32.
const (
	maxID    = 1<<21 - 1
	maxBytes = 1 << 30
)

// newVocab builds a Vocab from tokens whose bytes lie in data. Ids are
// unique, in [1, maxID], and no token is empty (the parsers check).
func newVocab(data []byte, es []entry) (*Vocab, error) {
	if len(es) == 0 {
		return nil, errors.New("empty vocabulary")
	}
	top := int32(0)
	for _, e := range es {
		top = max(top, e.id)
	}
	v := &Vocab{off: make([]uint32, top+2)}
	// Lay the bytes out by id so Decode is a slice per token.
	slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(a.id, b.id) })
	size := 0
	for _, e := range es {
		size += int(e.end - e.start)
	}
	v.data = make([]byte, 0, size)
	k := 0
	for id := int32(0); id <= top; id++ {
		v.off[id] = uint32(len(v.data))
		if k < len(es) && es[k].id == id {
			start := uint32(len(v.data))
			v.data = append(v.data, data[es[k].start:es[k].end]...)
			es[k].start, es[k].end = start, uint32(len(v.data))
			k++
		}
	}
	v.off[top+1] = uint32(len(v.data))

	// Sorting by bytes puts every prefix right before the tokens that
	// extend it, so the trie is built in one pass with each node's edges
	// contiguous and sorted. Equal byte strings sort by id, and the build
	// keeps the last, so a duplicated token encodes as its highest id, as
	// in the reference tokenizer, whose token-to-id dict is filled in id order.
	v.sortByBytes(es)
	// A trie has at most one node per token byte plus the root, and one
	// edge per node but the root; the World vocabulary has 1.8 nodes a token.
	v.nodes = make([]node, 0, min(size+1, 2*len(es)))
	v.labels = make([]byte, 0, cap(v.nodes))
	v.child = make([]uint32, 0, cap(v.nodes))
	v.build(es, 0)
	r := v.nodes[0]
	for i := r.first; i < r.first+r.n; i++ {
		v.root[v.labels[i]] = v.child[i]
	}
	for i := range v.nodes {
		nd := &v.nodes[i]
		if nd.n <= manyEdges {
			continue
		}
		var set byteSet
		for _, c := range v.labels[nd.first : nd.first+nd.n] {
			set.bits[c>>6] |= 1 << (c & 63)
		}
		for w := 1; w < 4; w++ {
			set.before[w] = set.before[w-1] + uint32(bits.OnesCount64(set.bits[w-1]))
		}
		v.sets = append(v.sets, set)
		nd.set = uint32(len(v.sets))
	}
	// Every byte must be a token of its own, or some text could not be
	// encoded.
	for c := range 256 {
		if n := v.root[c]; n == 0 || v.nodes[n].id < 0 {
			return nil, fmt.Errorf("vocabulary has no token for the single byte 0x%02x", c)
		}
	}
	return v, nil
}

// sortByBytes sorts es, which is in id order, by token bytes and then id.
// It is a stable radix sort on the first eight bytes, read as a big-endian
// integer, followed by a comparison sort of the runs that share them: this
// runs at every program start that needs the World vocabulary, and a plain
// comparison sort was the larger part of the load time. The zero padding
// of short tokens can only make keys equal, never misordered.
func (v *Vocab) sortByBytes(es []entry) {
	for i := range es {
		es[i].key = prefixKey(v.data[es[i].start:es[i].end])
	}
	tmp := make([]entry, len(es))
	src, dst := es, tmp
	for shift := 0; shift < 64; shift += 8 {
		var count [257]int
		for _, e := range src {
			count[int(byte(e.key>>shift))+1]++
		}
		if count[int(byte(src[0].key>>shift))+1] == len(src) {
			continue // every key has the same byte here
		}
		for i := 1; i < len(count); i++ {
			count[i] += count[i-1]
		}
		for _, e := range src {
			d := byte(e.key >> shift)
			dst[count[d]] = e
			count[d]++
		}
		src, dst = dst, src
	}
	copy(es, src)
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].key == es[i].key {
			j++
		}
		if j-i > 1 {
			slices.SortStableFunc(es[i:j], func(a, b entry) int {
				return bytes.Compare(v.data[a.start:a.end], v.data[b.start:b.end])
			})
		}
		i = j
	}
}

// build adds the node for the common prefix of length depth of es (sorted
// by bytes) and, recursively, its subtree; it returns the node's index.
func (v *Vocab) build(es []entry, depth int) uint32 {
	idx := uint32(len(v.nodes))
	v.nodes = append(v.nodes, node{id: -1})
	i := 0
	for i < len(es) && int(es[i].end-es[i].start) == depth {
		v.nodes[idx].id = es[i].id
		i++
	}
	es = es[i:]
	first := len(v.labels)
	for j, e := range es {
		if c := v.data[int(e.start)+depth]; j == 0 || c != v.labels[len(v.labels)-1] {
			v.labels = append(v.labels, c)
		}
	}
	last := len(v.labels)
	v.nodes[idx].first, v.nodes[idx].n = uint32(first), uint32(last-first)
	v.child = append(v.child, make([]uint32, last-first)...)
	for g, j := first, 0; g < last; g++ {
		c, e := v.labels[g], j+1
		for e < len(es) && v.data[int(es[e].start)+depth] == c {
			e++
		}
		v.child[g] = v.build(es[j:e], depth+1)
		j = e
	}
	return idx
}

func (v *Vocab) token(id int32) []byte { return v.data[v.off[id]:v.off[id+1]:v.off[id+1]] }

// next returns the node reached from n over byte c, or 0 if there is none.
func (v *Vocab) next(n uint32, c byte) uint32 {
	nd := &v.nodes[n]
	if nd.set != 0 {
		set := &v.sets[nd.set-1]
		w, bit := set.bits[c>>6], uint64(1)<<(c&63)
		if w&bit == 0 {
			return 0
		}
		return v.child[nd.first+set.before[c>>6]+uint32(bits.OnesCount64(w&(bit-1)))]
	}
	for i, l := range v.labels[nd.first : nd.first+nd.n] {
		if l == c {
			return v.child[nd.first+uint32(i)]
		}
	}
	return 0
}

// Encode returns the token ids of text by greedy longest match.
func (v *Vocab) Encode(text string) []int {
	ids := make([]int, 0, len(text)/3+1)
	for i := 0; i < len(text); {
		n := v.root[text[i]]
		best, bestLen := v.nodes[n].id, 1 // every byte is a token
		for j := i + 1; j < len(text); j++ {
			if n = v.next(n, text[j]); n == 0 {
				break
			}
			if id := v.nodes[n].id; id >= 0 {
				best, bestLen = id, j+1-i
			}
		}
		ids = append(ids, int(best))
		i += bestLen
	}
	return ids
}

// Decode returns the concatenated bytes of the tokens. EndOfText decodes
// to nothing.
func (v *Vocab) Decode(ids []int) ([]byte, error) {
	var b []byte
	for _, id := range ids {
		t, ok := v.Token(id)
		if !ok {
			return nil, fmt.Errorf("tokenizer: id %d: %w (vocabulary of %d)", id, ErrUnknownID, v.VocabSize())
		}
		b = append(b, t...)
	}
	return b, nil
}

// Token returns the bytes of token id, which the caller must not modify,
// and whether the vocabulary has that id. EndOfText has no bytes.
func (v *Vocab) Token(id int) ([]byte, bool) {
	if id < 0 || id >= len(v.off)-1 {
		return nil, false
	}
	t := v.token(int32(id))
	return t, len(t) > 0 || id == EndOfText
}

// Lookup returns the id of the token whose bytes are exactly s.
func (v *Vocab) Lookup(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := v.root[s[0]]
	for i := 1; i < len(s) && n != 0; i++ {
		n = v.next(n, s[i])
	}
	if n == 0 || v.nodes[n].id < 0 {
		return 0, false
	}
	return int(v.nodes[n].id), true
}

// VocabSize returns one more than the largest token id.
func (v *Vocab) VocabSize() int { return len(v.off) - 1 }

// Len returns the number of tokens, not counting EndOfText.
func (v *Vocab) Len() int {
	n := 0
	for id := 1; id < len(v.off)-1; id++ {
		if v.off[id+1] > v.off[id] {
			n++
		}
	}
	return n
}
