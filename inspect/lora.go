package inspect

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/rwkvkit/rwkvkit/lora"
)

// An Adapter describes a LoRA file.
type Adapter struct {
	Naming  string   `json:"naming"` // "web-rwkv" (lora.0/lora.1) or "RWKV-LM" (lora_A/lora_B)
	Ranks   []int    `json:"ranks"`  // the distinct ranks of its pairs
	Pairs   int      `json:"pairs"`  // low-rank updates
	Full    int      `json:"full"`   // full-tensor updates
	Targets []Target `json:"targets"`
}

// A Target is one kind of tensor an adapter changes, and in which layers:
// "att.key" in layers 0–11; a tensor outside the blocks has no layers.
type Target struct {
	Tensor string `json:"tensor"`
	Layers []int  `json:"layers,omitempty"`
}

func adapterOf(ad *lora.Adapter) *Adapter {
	a := &Adapter{Naming: ad.Naming.String()}
	index := map[string]int{}
	for _, e := range ad.Entries {
		if e.Rank > 0 {
			a.Pairs++
			if !slices.Contains(a.Ranks, e.Rank) {
				a.Ranks = append(a.Ranks, e.Rank)
			}
		} else {
			a.Full++
		}
		name, layer := e.Name, -1
		if rest, ok := strings.CutPrefix(name, "blocks."); ok {
			if n, tail, ok := strings.Cut(rest, "."); ok {
				if l, err := strconv.Atoi(n); err == nil {
					name, layer = tail, l
				}
			}
		}
		i, ok := index[name]
		if !ok {
			i = len(a.Targets)
			index[name] = i
			a.Targets = append(a.Targets, Target{Tensor: name})
		}
		if layer >= 0 && !slices.Contains(a.Targets[i].Layers, layer) {
			a.Targets[i].Layers = append(a.Targets[i].Layers, layer)
		}
	}
	slices.Sort(a.Ranks)
	for i := range a.Targets {
		slices.Sort(a.Targets[i].Layers)
	}
	slices.SortFunc(a.Targets, func(x, y Target) int { return cmp.Compare(x.Tensor, y.Tensor) })
	return a
}
