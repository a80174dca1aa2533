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
	switch body.Interval {
	case "1m":
		out.Interval = time.Minute
	case "1h":
		out.Interval = time.Hour
	case "1d":
		out.Interval = 24 * time.Hour
	default:
		return EventStats{}, fmt.Errorf("decode answer of /v1/stats: interval %q", body.Interval)
	}
	out.IndexedSeq, _ = strconv.ParseUint(resp.header.Get("X-Eye-Indexed-Seq"), 10, 64)
	return out, nil
}
