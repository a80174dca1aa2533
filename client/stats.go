package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// StatsQuery selects event counts (GET /v1/stats). Zero fields are left to
// the server: interval 1h, to now, from a span before to that suits the
// interval (1 hour by minute, 1 day by hour, 30 days by day).
type StatsQuery struct {
	// Interval is the bucket width: time.Minute, time.Hour or 24*time.Hour.
	Interval time.Duration
	// From (inclusive) and To (exclusive) bound the event timestamp; the
	// answer holds every bucket that overlaps them, whole.
	From, To time.Time
	Category string // only events of this category
	Name     string // and this name; needs Category
	// MinSeq makes the server wait (up to Wait, default 5s, at most 60s)
	// until it has indexed this seq: counts that include an Ack's events.
	MinSeq uint64
	Wait   time.Duration
}

// EventStats are the counts of valid events by bucket of their timestamp.
type EventStats struct {
	Interval time.Duration
	Buckets  []StatsBucket // every bucket of the range, in time order, empty ones included
	// IndexedSeq is the seq the answering node read the counts at
	// (X-Eye-Indexed-Seq): they count exactly the valid events up to it.
	IndexedSeq uint64
}

// StatsBucket counts the valid events with a timestamp in [Start,
// Start+Interval).
type StatsBucket struct {
	Start  time.Time   `json:"start"`
	Total  uint64      `json:"total"`
	ByType []TypeCount `json:"by_type"` // by category, then name; only types with events
}

// TypeCount is the number of events of one type.
type TypeCount struct {
	Category string `json:"category"`
	Name     string `json:"name"`
	Count    uint64 `json:"count"`
}

// statsInterval is the name the server knows interval d by ("" for the default).
func statsInterval(d time.Duration) (string, bool) {
	switch d {
	case 0:
		return "", true
	case time.Minute:
		return "1m", true
	case time.Hour:
		return "1h", true
	case 24 * time.Hour:
		return "1d", true
	}
	return "", false
}

// ParseStatsInterval is the interval the server names "1m", "1h" or "1d"
// (statsInterval's inverse); false for any other name.
func ParseStatsInterval(name string) (time.Duration, bool) {
	switch name {
	case "1m":
		return time.Minute, true
	case "1h":
		return time.Hour, true
	case "1d":
		return 24 * time.Hour, true
	}
	return 0, false
}

// EventStats returns the counts of valid events q selects, read from the
// counts the server's indexer keeps (no scan of events): the same on every
// node at the same IndexedSeq.
func (c *Client) EventStats(ctx context.Context, q StatsQuery) (EventStats, error) {
	name, ok := statsInterval(q.Interval)
	if !ok {
		return EventStats{}, fmt.Errorf("stats: interval %s: want time.Minute, time.Hour or 24*time.Hour", q.Interval)
	}
	v := url.Values{}
	set(v, "interval", name)
	set(v, "category", q.Category)
	set(v, "name", q.Name)
	setCommon(v, q.From, q.To, 0, false, q.MinSeq, q.Wait)
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/v1/stats", query: v, idempotent: true, extraTimeout: q.Wait})
	if err != nil {
		return EventStats{}, fmt.Errorf("stats: %w", err)
	}
	var body struct {
		Interval string        `json:"interval"`
		Buckets  []StatsBucket `json:"buckets"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		return EventStats{}, fmt.Errorf("decode answer of /v1/stats: %w", err)
	}
	out := EventStats{Buckets: body.Buckets}
	if out.Interval, ok = ParseStatsInterval(body.Interval); !ok {
		return EventStats{}, fmt.Errorf("decode answer of /v1/stats: interval %q", body.Interval)
	}
	out.IndexedSeq, _ = strconv.ParseUint(resp.header.Get("X-Eye-Indexed-Seq"), 10, 64)
	return out, nil
}

// ErrorsSummaryQuery selects the failures ErrorsSummary counts.
type ErrorsSummaryQuery struct {
	// From (inclusive) and To (exclusive) bound received_at, as for
	// ErrorQuery.
	From, To time.Time
	// MinSeq makes the server wait (up to Wait) until it has indexed this
	// seq: counts that include an Ack's events.
	MinSeq uint64
	Wait   time.Duration
}

// ErrorSummary counts the events that failed validation (GET
// /v1/errors/summary).
type ErrorSummary struct {
	Total uint64 `json:"total"`
	// ByReason counts events by reason code: an event with two reasons
	// counts under both ("other": a reason this server has no code for).
	ByReason map[string]uint64 `json:"by_reason"`
	// ByType counts events by category and name, most first.
	ByType []TypeCount `json:"by_type"`
	// From and To are the range asked, as the server read it.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// IndexedSeq is the seq the answering node had indexed
	// (X-Eye-Indexed-Seq): the counts are of the failures up to it.
	IndexedSeq uint64 `json:"-"`
}

// ErrorsSummary counts the failed events q selects by reason and by event
// type (read key).
func (c *Client) ErrorsSummary(ctx context.Context, q ErrorsSummaryQuery) (ErrorSummary, error) {
	v := url.Values{}
	setCommon(v, q.From, q.To, 0, false, q.MinSeq, q.Wait)
	var s ErrorSummary
	req := &request{method: http.MethodGet, path: "/v1/errors/summary", query: v, idempotent: true, extraTimeout: q.Wait}
	resp, err := c.do(ctx, req)
	if err != nil {
		return ErrorSummary{}, fmt.Errorf("errors summary: %w", err)
	}
	if err := json.Unmarshal(resp.body, &s); err != nil {
		return ErrorSummary{}, fmt.Errorf("decode answer of /v1/errors/summary: %w", err)
	}
	if s.ByReason == nil {
		s.ByReason = map[string]uint64{}
	}
	s.IndexedSeq, _ = strconv.ParseUint(resp.header.Get("X-Eye-Indexed-Seq"), 10, 64)
	return s, nil
}
