package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/theeye/theeye/client"
)

func (c *cli) tailCommand() *cobra.Command {
	var q client.StreamQuery
	var fromSeq uint64
	cmd := &cobra.Command{
		Use:   "tail [--category C [--name N]] [--app A] [--session ID] [--from-seq N]",
		Short: "Follow events as they are indexed (a stream)",
		Long: `Follow the valid events, in seq order, as the node indexes them (GET /v1/stream):
from now on, or after --from-seq N (0: the whole log). Invalid events and
duplicates never show. tail reconnects by itself and resumes after the last
event it printed, on the next --server when one goes away, so nothing is
missed or printed twice. Stop with Ctrl-C.

To copy events into another system exactly once, store the seq of the last
event you handled with what you made of it, and restart with --from-seq at
that seq.`,
		Example: `  eyectl tail --category "form interaction"
  eyectl tail --from-seq 0 -o ndjson > everything.ndjson   # the whole log, then live
  eyectl tail --session e2085be5-9137-4e4e-80b5-f1ffddc25423`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.Name != "" && q.Category == "" {
				return usageErrf("--name needs --category: an event type is category + name")
			}
			if cmd.Flags().Changed("from-seq") {
				q.FromSeq, q.FromStart = fromSeq, fromSeq == 0
			}
			// A stream lives long: nodes restart under it. Retry more than
			// one-off requests do; only a refusal (bad key, bad flag) ends it.
			cl, err := c.newClient(func(cfg *client.Config) {
				if cfg.MaxRetries >= 0 {
					cfg.MaxRetries = max(cfg.MaxRetries, 20)
				}
			})
			if err != nil {
				return err
			}
			defer closeClient(cl)
			err = c.tail(cmd.Context(), cl, q)
			if errors.Is(err, context.Canceled) {
				return nil // Ctrl-C is how tail ends
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Category, "category", "", "only this category")
	f.StringVar(&q.Name, "name", "", "only this name (needs --category)")
	f.StringVar(&q.App, "app", "", "only events sent by this app")
	f.StringVar(&q.SessionID, "session", "", "only this session")
	f.Uint64Var(&fromSeq, "from-seq", 0, "start after this seq (0: the start of the log) instead of now")
	return cmd
}

// tail prints each event of the stream as it comes: a table row (the
// header once), or NDJSON.
func (c *cli) tail(ctx context.Context, cl *client.Client, q client.StreamQuery) error {
	format := c.format()
	if format == "table" {
		tw := newTable(c.stdout)
		fmt.Fprintln(tw, strings.Join(eventHeader(), "\t"))
		tw.Flush()
	}
	l := lister[client.StoredEvent]{format: tailFormat(format), w: c.stdout, header: eventHeader(), row: eventRow}
	return cl.Stream(ctx, q, func(e client.StoredEvent) error {
		_, err := l.print(seqOf([]client.StoredEvent{e}))
		return err
	})
}

// tailFormat: tail streams, so json is printed as NDJSON and the table
// header only once.
func tailFormat(f string) string {
	if f == "table" {
		return "rows"
	}
	return "ndjson"
}
