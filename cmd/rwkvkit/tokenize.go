package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rwkvkit/rwkvkit/tokenizer"
)

func newTokenize() *cobra.Command {
	var decode, asJSON bool
	var vocab string
	cmd := &cobra.Command{
		Use: "tokenize [TEXT]",
		Example: `  rwkvkit tokenize "Hello, world!"
  rwkvkit tokenize --json "Hello, world!"
  echo 33155,47,1002 | rwkvkit tokenize --decode`,
		Short: "Print the World tokenizer's ids for TEXT (or stdin); --decode turns ids back into text",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := loadVocab(vocab)
			if err != nil {
				return err
			}
			var in string
			if len(args) == 1 {
				in = args[0]
			} else {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				in = string(b)
			}
			out := cmd.OutOrStdout()
			if decode {
				ids, err := parseIDs(in)
				if err != nil {
					return err
				}
				text, err := tok.Decode(ids)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(out, struct {
						Text string `json:"text"`
					}{string(text)})
				}
				_, err = out.Write(text)
				return err
			}
			ids := tok.Encode(in)
			if asJSON {
				return printJSON(out, struct {
					Tokens int   `json:"tokens"`
					IDs    []int `json:"ids"`
				}{len(ids), ids})
			}
			_, err = fmt.Fprintln(out, formatIDs(ids))
			return err
		},
	}
	cmd.Flags().BoolVar(&decode, "decode", false, "read comma-separated ids and print their text")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: the ids and their count, or the decoded text")
	cmd.Flags().StringVar(&vocab, "vocab", "", "vocabulary file (.txt or .json form) instead of the embedded World vocabulary")
	return cmd
}

func loadVocab(path string) (*tokenizer.Vocab, error) {
	if path == "" {
		return tokenizer.World(), nil
	}
	return tokenizer.LoadFile(path)
}

// parseIDs reads ids separated by commas and/or white space.
func parseIDs(s string) ([]int, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })
	ids := make([]int, 0, len(fields))
	for _, f := range fields {
		id, err := strconv.Atoi(f)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("token id %q is not a non-negative integer", f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func formatIDs(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}
