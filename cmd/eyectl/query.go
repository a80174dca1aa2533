package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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
  eyectl errors --reason timestamp_in_future --app shop-web`,
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
	f := cmd.Flags()
	f.StringVar(&reason, "reason", "", "only this reason code")
	f.StringVar(&app, "app", "", "only events sent by this app")
	q.register(cmd)
	return cmd
}

func (c *cli) tailCommand() *cobra.Command {
	var category, name, app string
	var interval, window time.Duration
	cmd := &cobra.Command{
		Use:   "tail [--category C [--name N]] [--app A]",
		Short: "Follow new events as they are indexed",
		Long: `Follow new events: every --interval, print the events indexed since the last
look (in seq order) whose timestamp is within --window of now. Events sent with
an older timestamp are stored and queryable, but tail does not show them. Stop
with Ctrl-C.`,
		Example: `  eyectl tail --category "form interaction"`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name != "" && category == "" {
				return usageErrf("--name needs --category: an event type is category + name")
			}
			if interval <= 0 || window <= 0 {
				return usageErrf("--interval and --window must be more than 0")
			}
			cl, err := c.newClient(func(cfg *client.Config) { cfg.MaxRetries = max(cfg.MaxRetries, 5) })
			if err != nil {
				return err
			}
			defer closeClient(cl)
			err = c.tail(cmd.Context(), cl, client.Query{Category: category, Name: name, App: app}, interval, window)
			if errors.Is(err, context.Canceled) {
				return nil // Ctrl-C is how tail ends
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&category, "category", "", "only this category")
	f.StringVar(&name, "name", "", "only this name (needs --category)")
	f.StringVar(&app, "app", "", "only events sent by this app")
	f.DurationVar(&interval, "interval", time.Second, "how often to look for new events")
	f.DurationVar(&window, "window", 5*time.Minute, "show new events whose timestamp is at most this far from now")
	return cmd
}

// tail polls: the node's indexed seq marks what was seen; each round reads
// the window and prints the events with a seq in (seen, indexed].
func (c *cli) tail(ctx context.Context, cl *client.Client, q client.Query, interval, window time.Duration) error {
	q.Limit = 1
	first, err := cl.EventsPage(ctx, q, "")
	if err != nil {
		return err
	}
	seen := first.IndexedSeq
	format := c.format()
	if format == "table" {
		tw := newTable(c.stdout)
		fmt.Fprintln(tw, strings.Join(eventHeader(), "\t"))
		tw.Flush()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	q.Limit = 1000
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		now := time.Now()
		q.From, q.To = now.Add(-window), now.Add(window)
		var fresh []client.StoredEvent
		top := uint64(0)
		cursor := ""
		for {
			p, err := cl.EventsPage(ctx, q, cursor)
			if err != nil {
				return err
			}
			if top == 0 {
				top = p.IndexedSeq // everything up to it is visible to every page
			}
			for _, e := range p.Items {
				if e.Seq > seen && e.Seq <= top {
					fresh = append(fresh, e)
				}
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		slices.SortFunc(fresh, func(a, b client.StoredEvent) int { return cmp.Compare(a.Seq, b.Seq) })
		if len(fresh) > 0 {
			if _, err := (lister[client.StoredEvent]{format: tailFormat(format), w: c.stdout, header: eventHeader(), row: eventRow}).print(seqOf(fresh)); err != nil {
				return err
			}
		}
		if top > seen {
			seen = top
		}
	}
}

// tailFormat: tail streams, so json is printed as NDJSON and the table
// header only once.
func tailFormat(f string) string {
	if f == "table" {
		return "rows"
	}
	return "ndjson"
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
