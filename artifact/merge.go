package artifact

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/gpu"
	"github.com/rwkvkit/rwkvkit/lora"
	"github.com/rwkvkit/rwkvkit/model"
	"github.com/rwkvkit/rwkvkit/serialize"
)

// Merge opens the adapter files and returns base (read from the file
// baseName, for errors) with them merged in order, computed on dev (nil: the
// CPU), and the provenance of each adapter. The result is lazy (see
// [lora.Merge], which ctx governs); closing it closes base and the adapters' files.
// A pattern that matches none of the tensors the adapters change is an
// error: it would silently do nothing.
func Merge(ctx context.Context, base *format.Source, baseName string, loras []LoRA, patterns []lora.Pattern, dev *gpu.Device) (*format.Source, []serialize.LoRA, error) {
	return merge(ctx, base, baseName, loras, patterns, dev, true)
}

// merge is Merge, with the adapters' digests only when digests is set.
func merge(ctx context.Context, base *format.Source, baseName string, loras []LoRA, patterns []lora.Pattern, dev *gpu.Device, digests bool) (*format.Source, []serialize.LoRA, error) {
	var blends []lora.Blend
	var prov []serialize.LoRA
	var closers multiCloser
	fail := func(err error) (*format.Source, []serialize.LoRA, error) {
		closers.Close()
		return nil, nil, err
	}
	for _, l := range loras {
		src, err := model.Open(l.Path)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, src)
		ad, err := lora.Open(src)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", l.Path, err))
		}
		blends = append(blends, lora.Blend{Adapter: ad, Alpha: l.Alpha, Patterns: patterns})
		if !digests {
			continue
		}
		d, err := serialize.DigestFile(l.Path)
		if err != nil {
			return fail(err)
		}
		prov = append(prov, serialize.LoRA{FileDigest: d, Alpha: float64(l.Alpha)})
	}
	if err := checkPatterns(blends, patterns); err != nil {
		return fail(err)
	}
	opts := &lora.Options{}
	if dev != nil {
		g, err := lora.NewGPU(dev)
		if err != nil {
			return fail(err)
		}
		opts.Backend = g
		closers = append(closers, releaser(g.Close))
	}
	merged, err := lora.Merge(ctx, base, blends, opts)
	if err != nil {
		names := make([]string, len(loras))
		for i, l := range loras {
			names[i] = l.Path
		}
		return fail(fmt.Errorf("merge %s into %s: %w", strings.Join(names, ", "), baseName, err))
	}
	// Two: one reads its base tensor while the other computes.
	if err := fewAtATime(base, merged, 2); err != nil {
		return fail(err)
	}
	merged.Closer = append(closers, merged.Closer)
	return merged, prov, nil
}

// checkPatterns reports a pattern that matches no tensor any adapter
// changes (by the base tensor's web-rwkv name, as lora.Blend.AlphaFor
// matches).
func checkPatterns(blends []lora.Blend, patterns []lora.Pattern) error {
	var targets []string
	for _, b := range blends {
		for _, e := range b.Adapter.Entries {
			name := e.Name
			if e.Rank > 0 {
				name += ".weight"
			}
			targets = append(targets, name)
		}
	}
	for _, p := range patterns {
		if len(targets) > 0 && !slices.ContainsFunc(targets, p.Regexp.MatchString) {
			return fmt.Errorf("LoRA pattern %q matches none of the %d tensors the adapters change (%s, …)", p.Regexp, len(targets), targets[0])
		}
	}
	return nil
}

// releaser is a Close that cannot fail.
type releaser func()

func (r releaser) Close() error { r(); return nil }

// multiCloser closes several sources; nil entries are skipped.
type multiCloser []interface{ Close() error }

func (m multiCloser) Close() error {
	var first error
	for _, c := range m {
		if c == nil {
			continue
		}
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
