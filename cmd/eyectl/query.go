package main

import (
	"github.com/spf13/cobra"

	"github.com/theeye/theeye/client"
)

// queryFlags are the flags events and errors share.
type queryFlags struct {
	from, to string
	limit    int
	desc     bool
	minSeq   uint64
}

func (q *queryFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&q.from, "from", "", "only events from this time (inclusive)")
	f.StringVar(&q.to, "to", "", "only events before this time (exclusive)")
	f.IntVar(&q.limit, "limit", 100, "print at most this many (0: all)")
	f.BoolVar(&q.desc, "desc", false, "newest first")
	f.Uint64Var(&q.minSeq, "min-seq", 0, "wait until the node has indexed this seq (read-your-writes; see the last seq `send` prints)")
}

// pageSize is the page the iterators fetch for a --limit.
func pageSize(limit int) int {
	if limit <= 0 || limit > 1000 {
		return 1000
	}
	return limit
}

func (c *cli) eventsCommand() *cobra.Command {
	var q queryFlags
	var session, category, name, app string
	cmd := &cobra.Command{
		Use:   "events [--session ID | --category C [--name N]] [--app A] [--from T] [--to T]",
		Short: "List events of a session, of a category, or of a time range",
		Long: `List events: of one session (ordered by timestamp, ties by seq), or of a
category (and name), or, with neither, every event in the time range.`,
		Example: `  eyectl events --session e2085be5-9137-4e4e-80b5-f1ffddc25423
  eyectl events --category "page interaction" --name pageview --from 2021-01-01 --to 2021-01-02
  eyectl events --from -1h --limit 0 -o ndjson > last-hour.ndjson`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if session != "" && (category != "" || name != "" || app != "") {
				return usageErrf("--session cannot be combined with --category, --name or --app: a session query returns every app's events of that session")
			}
			if name != "" && category == "" {
				return usageErrf("--name needs --category: an event type is category + name")
			}
			from, to, err := timeRange(q.from, q.to)
			if err != nil {
				return err
			}
			if q.limit < 0 {
				return usageErrf("--limit %d: want 0 (all) or more", q.limit)
			}
			return c.withClient(func(cl *client.Client) error {
				query := client.Query{Category: category, Name: name, App: app, From: from, To: to,
					Limit: pageSize(q.limit), Desc: q.desc, MinSeq: q.minSeq}
				seq := cl.Events(cmd.Context(), query)
				if session != "" {
					seq = cl.SessionEvents(cmd.Context(), session, query)
				}
				_, err = lister[client.StoredEvent]{format: c.format(), w: c.stdout, header: eventHeader(), row: eventRow}.print(limit(seq, q.limit))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&session, "session", "", "the session id")
	f.StringVar(&category, "category", "", "the event category")
	f.StringVar(&name, "name", "", "the event name (needs --category)")
	f.StringVar(&app, "app", "", "only events sent by this app")
	q.register(cmd)
	return cmd
}

func (c *cli) errorsCommand() *cobra.Command {
	var q queryFlags
	var reason, app string
	cmd := &cobra.Command{
		Use:   "errors [--reason R] [--app A] [--from T] [--to T]",
		Short: "List the events that failed validation, with their reasons",
		Long: `List the events that failed validation, ordered by the time they were
received (--from and --to apply to it, since an event's own timestamp may be
what is wrong). Reasons: missing_field, wrong_type, reserved_field, empty_data,
invalid_timestamp, timestamp_in_future, timestamp_too_old, schema_violation,
unknown_event_type.`,
		Example: `  eyectl errors --from -1h
  eyectl errors --reason timestamp_in_future --app shop-web
  eyectl errors summary --from -1d    # counts by reason and type`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, to, err := timeRange(q.from, q.to)
			if err != nil {
				return err
			}
			return c.withClient(func(cl *client.Client) error {
				seq := cl.Errors(cmd.Context(), client.ErrorQuery{Reason: reason, App: app, From: from, To: to,
					Limit: pageSize(q.limit), Desc: q.desc, MinSeq: q.minSeq})
				_, err = lister[client.ErrorRecord]{format: c.format(), w: c.stdout, header: errorHeader(), row: errorRow}.print(limit(seq, q.limit))
				return err
			})
		},
	}
	cmd.AddCommand(c.errorsSummaryCommand())
	f := cmd.Flags()
	f.StringVar(&reason, "reason", "", "only this reason code")
	f.StringVar(&app, "app", "", "only events sent by this app")
	q.register(cmd)
	return cmd
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrf("%s needs %s", cmd.CommandPath(), what)
		}
		return nil
	}
}
