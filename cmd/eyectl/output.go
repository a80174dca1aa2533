package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/client"
)

// lister prints items as a table, a JSON array or NDJSON.
type lister[T any] struct {
	format string
	w      io.Writer
	header []string
	row    func(T) []string
}

// print writes every item of seq, stopping at the first error, and returns
// how many it wrote. Nothing is written for a query that fails before its
// first item (no lone table header, no "[]").
func (l lister[T]) print(seq iter.Seq2[T, error]) (int, error) {
	n := 0
	var tw *tabwriter.Writer
	begin := func() {
		switch l.format {
		case "table", "rows": // rows: a table without its header (tail)
			tw = newTable(l.w)
			if l.format == "table" {
				fmt.Fprintln(tw, strings.Join(l.header, "\t"))
			}
		case "json":
			io.WriteString(l.w, "[")
		}
	}
	for it, err := range seq {
		if err != nil {
			if n > 0 {
				l.end(tw, n)
			}
			return n, err
		}
		if n == 0 {
			begin()
		}
		switch l.format {
		case "table", "rows":
			cells := l.row(it)
			for i := range cells {
				cells[i] = cell(cells[i])
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		case "json":
			b, err := json.MarshalIndent(it, "  ", "  ")
			if err != nil {
				return n, fmt.Errorf("encode output: %w", err)
			}
			if n > 0 {
				io.WriteString(l.w, ",")
			}
			io.WriteString(l.w, "\n  ")
			l.w.Write(b)
		default:
			if err := writeNDJSON(l.w, it); err != nil {
				return n, err
			}
		}
		n++
	}
	if n == 0 {
		begin()
	}
	l.end(tw, n)
	return n, nil
}

func (l lister[T]) end(tw *tabwriter.Writer, n int) {
	switch l.format {
	case "table", "rows":
		tw.Flush()
	case "json":
		if n > 0 {
			io.WriteString(l.w, "\n")
		}
		io.WriteString(l.w, "]\n")
	}
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func writeNDJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// printOne prints a single object: JSON (indented) or NDJSON as it is, or
// as key/value lines on a table.
func printOne(format string, w io.Writer, v any, rows [][2]string) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case "ndjson":
		return writeNDJSON(w, v)
	}
	tw := newTable(w)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], cell(r[1]))
	}
	return tw.Flush()
}

// seqOf turns a slice into an iterator.
func seqOf[T any](items []T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, it := range items {
			if !yield(it, nil) {
				return
			}
		}
	}
}

// limit stops seq after n items (n <= 0: no limit).
func limit[T any](seq iter.Seq2[T, error], n int) iter.Seq2[T, error] {
	if n <= 0 {
		return seq
	}
	return func(yield func(T, error) bool) {
		i := 0
		for it, err := range seq {
			if !yield(it, err) || err != nil {
				return
			}
			if i++; i >= n {
				return
			}
		}
	}
}

// cell makes a value fit a table cell: one line, no tabs.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// clip shortens s to n runes.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return theeye.FormatTime(t)
}

func eventHeader() []string {
	return []string{"SEQ", "TIMESTAMP", "SESSION", "CATEGORY", "NAME", "APP", "DATA"}
}

func eventRow(e client.StoredEvent) []string {
	return []string{fmt.Sprint(e.Seq), fmtTime(e.Timestamp), e.SessionID, e.Category, e.Name, e.App, clip(compactJSON(e.Data), 60)}
}

func errorHeader() []string { return []string{"SEQ", "RECEIVED_AT", "APP", "REASONS", "EVENT"} }

func errorRow(r client.ErrorRecord) []string {
	reasons := make([]string, len(r.Reasons))
	for i, x := range r.Reasons {
		reasons[i] = x.Code + "@" + x.Field
	}
	return []string{fmt.Sprint(r.Seq), fmtTime(r.ReceivedAt), r.App, strings.Join(reasons, ","), clip(compactJSON(r.Event), 60)}
}
