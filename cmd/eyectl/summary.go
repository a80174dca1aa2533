package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/theeye/theeye/client"
)

func (c *cli) errorsSummaryCommand() *cobra.Command {
	var from, to string
	var minSeq uint64
	cmd := &cobra.Command{
		Use:   "summary [--from T] [--to T]",
		Short: "Count the events that failed validation, by reason and by event type",
		Long: `Count the failed events received in [--from, --to) (GET /v1/errors/summary):
their total, then by reason code (an event with two reasons counts under both;
"other" is a reason this eyectl has no code for), then by category and name,
most first.`,
		Example: `  eyectl errors summary --from -1h
  eyectl errors summary --from 2021-01-01 --to 2021-01-02 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, t, err := timeRange(from, to)
			if err != nil {
				return err
			}
			return c.withClient(func(cl *client.Client) error {
				s, err := cl.ErrorsSummary(cmd.Context(), client.ErrorsSummaryQuery{From: f, To: t, MinSeq: minSeq})
				if err != nil {
					return err
				}
				return printErrorsSummary(c.format(), c.stdout, s)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "only failures received at or after this time")
	fl.StringVar(&to, "to", "", "only failures received before this time")
	fl.Uint64Var(&minSeq, "min-seq", 0, "wait until the node has indexed this `seq` (so the counts include what send acknowledged)")
	return cmd
}

// printErrorsSummary prints the server's JSON (json, ndjson), or the
// total, a REASON table and a CATEGORY/NAME table.
func printErrorsSummary(format string, w io.Writer, s client.ErrorSummary) error {
	if format == "json" || format == "ndjson" {
		return printOne(format, w, s, nil)
	}
	reasons := make([]string, 0, len(s.ByReason))
	for r := range s.ByReason {
		reasons = append(reasons, r)
	}
	// Most first, then by code.
	slices.SortFunc(reasons, func(a, b string) int {
		if s.ByReason[a] != s.ByReason[b] {
			if s.ByReason[a] > s.ByReason[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	fmt.Fprintf(w, "%d failed events (from %s to %s, up to seq %d)\n\n", s.Total, fmtTime(s.From), fmtTime(s.To), s.IndexedSeq)
	tw := newTable(w)
	fmt.Fprintln(tw, "REASON\tCOUNT")
	for _, r := range reasons {
		fmt.Fprintf(tw, "%s\t%d\n", cell(r), s.ByReason[r])
	}
	tw.Flush()
	fmt.Fprintln(w)
	_, err := lister[client.TypeCount]{format: "table", w: w, header: []string{"CATEGORY", "NAME", "COUNT"},
		row: func(t client.TypeCount) []string { return []string{t.Category, t.Name, fmt.Sprint(t.Count)} }}.print(seqOf(s.ByType))
	return err
}
