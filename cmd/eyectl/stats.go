package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/theeye/theeye/client"
)

// sparkWidth is the most columns a sparkline takes.
const sparkWidth = 100

func (c *cli) statsCommand() *cobra.Command {
	var from, to, interval, category, name string
	var minSeq uint64
	cmd := &cobra.Command{
		Use:   "stats [--from T] [--to T] [--interval 1m|1h|1d] [--category C [--name N]]",
		Short: "Count events by time bucket and type, with a sparkline",
		Long: `Count the valid events by bucket of their timestamp (UTC buckets of 1m, 1h or
1d) and by type, from the counts the server keeps as it indexes (no scan of
events; the same answer on every node). Every bucket that overlaps --from ..
--to is shown, empty ones included. Without --to: now; without --from: the
last hour by minute, the last day by hour, the last 30 days by day. At most
10,000 buckets.

The table lists each bucket, then each type with its total and a sparkline of
its counts over the range (a blank for none, ▁ to █ by the share of the
busiest column; long ranges are summed into at most 100 columns).`,
		Example: `  eyectl stats
  eyectl stats --from 2021-01-01 --to 2021-01-02 --category "page interaction"
  eyectl stats --interval 1d --from -90d -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name != "" && category == "" {
				return usageErrf("--name needs --category: an event type is category + name")
			}
			q := client.StatsQuery{Category: category, Name: name, MinSeq: minSeq}
			var ok bool
			if q.Interval, ok = client.ParseStatsInterval(interval); !ok {
				return usageErrf("--interval %q: want 1m, 1h or 1d", interval)
			}
			var err error
			if q.From, q.To, err = timeRange(from, to); err != nil {
				return err
			}
			return c.withClient(func(cl *client.Client) error {
				st, err := cl.EventStats(cmd.Context(), q)
				if err != nil {
					return err
				}
				return printStats(c.format(), c.stdout, interval, st)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "first bucket: the one holding this time")
	f.StringVar(&to, "to", "", "end: buckets before this time (exclusive; default now)")
	f.StringVar(&interval, "interval", "1h", "bucket width: 1m, 1h or 1d")
	f.StringVar(&category, "category", "", "only this category")
	f.StringVar(&name, "name", "", "only this name (needs --category)")
	f.Uint64Var(&minSeq, "min-seq", 0, "wait until the node has indexed this `seq` (so the counts include what send acknowledged)")
	return cmd
}

// printStats prints the answer: the server's JSON (json), one bucket a
// line (ndjson), or the bucket table, then the type table with sparklines.
func printStats(format string, w io.Writer, interval string, st client.EventStats) error {
	buckets := st.Buckets
	if buckets == nil {
		buckets = []client.StatsBucket{}
	}
	switch format {
	case "json":
		return printOne("json", w, map[string]any{"interval": interval, "buckets": buckets}, nil)
	case "ndjson":
		for _, b := range buckets {
			if err := writeNDJSON(w, b); err != nil {
				return err
			}
		}
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "START\tTOTAL\tBY TYPE")
	for _, b := range buckets {
		types := make([]string, len(b.ByType))
		for i, t := range b.ByType {
			types[i] = t.Category + "/" + t.Name + " " + strconv.FormatUint(t.Count, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", fmtTime(b.Start), b.Total, cell(clip(strings.Join(types, ", "), 80)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(buckets) == 0 {
		return nil
	}
	// Per type (and all of them), the counts of every bucket.
	var order []string
	series := map[string][]uint64{}
	all := make([]uint64, len(buckets))
	var total uint64
	for i, b := range buckets {
		all[i], total = b.Total, total+b.Total
		for _, t := range b.ByType {
			k := t.Category + "/" + t.Name
			if series[k] == nil {
				series[k] = make([]uint64, len(buckets))
				order = append(order, k)
			}
			series[k][i] += t.Count
		}
	}
	last := buckets[len(buckets)-1].Start.Add(st.Interval)
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintf(tw, "TYPE\tTOTAL\tBY %s, %s … %s\n", interval, fmtTime(buckets[0].Start), fmtTime(last))
	fmt.Fprintf(tw, "all\t%d\t%s\n", total, sparkline(all, sparkWidth))
	for _, k := range order {
		var n uint64
		for _, v := range series[k] {
			n += v
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", cell(k), n, sparkline(series[k], sparkWidth))
	}
	return tw.Flush()
}

// sparkline draws values as one line of block characters, at most width
// of them (adjacent values summed to fit): a blank for zero, ▁ to █ by
// the share of the largest.
func sparkline(values []uint64, width int) string {
	per := (len(values) + width - 1) / width
	if per < 1 {
		per = 1
	}
	cols := make([]uint64, 0, (len(values)+per-1)/per)
	var top uint64
	for i := 0; i < len(values); i += per {
		var s uint64
		for _, v := range values[i:min(i+per, len(values))] {
			s += v
		}
		cols = append(cols, s)
		top = max(top, s)
	}
	const levels = "▁▂▃▄▅▆▇█"
	var b strings.Builder
	for _, v := range cols {
		if v == 0 {
			b.WriteByte(' ')
			continue
		}
		i := int((v*8 - 1) / top) // 1..top → 0..7
		b.WriteString(levels[i*3 : i*3+3])
	}
	return b.String()
}
