package pth

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/rwkvkit/rwkvkit/format"
)

// Tensors may share a storage: tied weights are two names of one matrix,
// and a view of a storage saved with it may overlap another. But a pickle
// can name one storage a thousand times in two bytes each, and every
// consumer that reads each tensor (a converter writing it, a runner holding
// it) would then amplify the file a thousandfold. So a checkpoint's
// tensors may hold at most aliasFactor times the bytes of the storages
// they view (counting bytes of the file once even where records overlap),
// plus aliasSlack.
const (
	aliasFactor = 4
	aliasSlack  = 1 << 20
)

// checkAliasing applies that rule to the tensors of a source and the views
// they come from, naming the tensors that share the most used storage when
// it is broken.
func checkAliasing(tensors []*format.Tensor, refs []*tensorRef) error {
	type span struct{ lo, hi int64 }
	var (
		logical int64
		spans   []span
		seen    = map[*storage]bool{}
	)
	for i, t := range tensors {
		logical += t.Size() // each ≤ its storage ≤ the file: no overflow for any real file
		st := refs[i].st
		if st.base != nil {
			st = st.base
		}
		if !seen[st] && st.off >= 0 {
			seen[st] = true
			spans = append(spans, span{st.off, st.off + st.nbytes})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	var distinct, end int64
	for _, s := range spans {
		lo := max(s.lo, end)
		if s.hi > lo {
			distinct += s.hi - lo
			end = s.hi
		}
	}
	if logical <= aliasFactor*distinct+aliasSlack {
		return nil
	}
	// Name the tensors on the storage whose bytes are used the most.
	use := map[int64]int64{} // file offset of a storage → bytes of its tensors
	var worst int64 = -1
	for i, t := range tensors {
		off := refs[i].st.fileOffset()
		if refs[i].st.base != nil {
			off = refs[i].st.base.off
		}
		use[off] += t.Size()
		if worst < 0 || use[off] > use[worst] {
			worst = off
		}
	}
	var names []string
	var st *storage
	for i, t := range tensors {
		root := refs[i].st
		if root.base != nil {
			root = root.base
		}
		if root.off == worst {
			names = append(names, format.Quote(t.Name))
			if st == nil {
				st = root
			}
		}
	}
	return fmt.Errorf("tensors %s share storage %s (%d bytes) and read it for %d bytes: the checkpoint's tensors would hold %d bytes, more than %d times the %d bytes of storage they view (plus %d)",
		list(names), quote(st.key), st.nbytes, use[worst], logical, aliasFactor, distinct, aliasSlack)
}

// list joins the first few of names, saying how many more there are.
func list(names []string) string {
	const show = 3
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}
