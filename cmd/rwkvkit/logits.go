package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/atomicfile"
	"github.com/rwkvkit/rwkvkit/format"
	"github.com/rwkvkit/rwkvkit/logits"
	"github.com/rwkvkit/rwkvkit/verify"
)

func newLogits() *cobra.Command {
	var (
		in    inputFlags
		out   string
		force bool
	)
	cmd := &cobra.Command{
		Use: "logits MODEL (--tokens 1,2,3 | --text TEXT | --text-file FILE) --out FILE",
		Example: `  rwkvkit logits tiny.st --text "Hello" --out hello.f32        # 5 rows of 256 float32
  rwkvkit logits tiny.st --tokens 34,105,110 --out quote_in.f32`,
		Short: "Write the logits after each token: float32 little-endian, [tokens, vocabulary]",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := atomicfile.Check(out, force, args[0]); err != nil {
				return err
			}
			// Before the model is loaded: what the logits writer checks at
			// its start, after the work.
			if err := format.CheckExtension(out, ""); err != nil {
				return err
			}
			if err := in.resolve(cmd); err != nil {
				return err
			}
			ctx := cmd.Context()
			e, err := loadModel(ctx, args[0], in.device.c, in.rules, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer e.Close()
			ids, err := in.ids(e.Info().Vocab, "")
			if err != nil {
				return err
			}
			from, err := startState(in.state, e.Info())
			if err != nil {
				return err
			}
			// A chunk of positions at a time: memory follows a chunk, not
			// the output.
			bar := newTokenProgress(len(ids), args[0])
			opts := &verify.LogitsOptions{From: from, Progress: func(done, _ int) { bar.Set(done) }}
			err = logits.WriteFileFrom(ctx, out, force, func(put func([][]float32) error) error {
				return verify.Stream(ctx, e, ids, opts, func(_ int, rows [][]float32) error { return put(rows) })
			})
			if err != nil {
				return err
			}
			bar.Finish()
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d × %d float32\n", out, len(ids), e.Info().Vocab)
			return nil
		},
	}
	in.register(cmd)
	cmd.Flags().StringVarP(&out, "out", "o", "", "output file")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace the output if it exists")
	cmd.MarkFlagRequired("out")
	return cmd
}
