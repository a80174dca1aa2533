package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/theeye/theeye"
)

// Ingest sends events in one request and returns once the server has
// committed them on a quorum (202), with the same retries and failover as
// Track. Events without an ID get one (Ack.IDs lists them all, in order), so
// a retry never stores an event twice. It does not go through Track's
// queue, and a failure is returned here only.
func (c *Client) Ingest(ctx context.Context, events []Event) (Ack, error) {
	if len(events) == 0 {
		return Ack{}, errors.New("ingest: no events")
	}
	now := c.now()
	body := make([]byte, 0, 256*len(events))
	ids := make([]string, len(events))
	for i := range events {
		var err error
		body, ids[i], err = events[i].encode(body, now)
		if err != nil {
			return Ack{}, fmt.Errorf("ingest: events[%d]: %w", i, err)
		}
		body = append(body, '\n')
	}
	a, err := c.ingest(ctx, body, len(events))
	if err != nil {
		return Ack{}, fmt.Errorf("ingest %d events: %w", len(events), err)
	}
	c.noteAck(a)
	a.IDs = ids
	return a, nil
}

// Query selects events. Zero fields are left out of the request.
type Query struct {
	Category string // events of this category (Events only)
	Name     string // and this name; needs Category (Events only)
	App      string // sent by this app (Events only)
	// From (inclusive) and To (exclusive) bound the event timestamp.
	From, To time.Time
	// Limit is the page size (the server's default is 100, its maximum
	// 10,000). The iterators fetch page after page until the end.
	Limit int
	Desc  bool // newest first
	// MinSeq makes the server wait (up to Wait, default 5s, at most 60s)
	// until it has indexed this seq: read-your-writes after an Ack.
	MinSeq uint64
	Wait   time.Duration
}

func (q Query) values() url.Values {
	v := url.Values{}
	set(v, "category", q.Category)
	set(v, "name", q.Name)
	set(v, "app", q.App)
	setCommon(v, q.From, q.To, q.Limit, q.Desc, q.MinSeq, q.Wait)
	return v
}

// ErrorQuery selects events that failed validation.
type ErrorQuery struct {
	Reason string // a reason code, e.g. "timestamp_in_future"
	App    string
	// From (inclusive) and To (exclusive) bound received_at: the event's own
	// timestamp may be what is wrong.
	From, To time.Time
	Limit    int // page size
	Desc     bool
	MinSeq   uint64
	Wait     time.Duration
}

func (q ErrorQuery) values() url.Values {
	v := url.Values{}
	set(v, "reason", q.Reason)
	set(v, "app", q.App)
	setCommon(v, q.From, q.To, q.Limit, q.Desc, q.MinSeq, q.Wait)
	return v
}

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setCommon(v url.Values, from, to time.Time, limit int, desc bool, minSeq uint64, wait time.Duration) {
	if !from.IsZero() {
		v.Set("from", theeye.FormatTime(from))
	}
	if !to.IsZero() {
		v.Set("to", theeye.FormatTime(to))
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	if desc {
		v.Set("order", "desc")
	}
	if minSeq > 0 {
		v.Set("min_seq", strconv.FormatUint(minSeq, 10))
	}
	if wait > 0 {
		v.Set("wait", wait.String())
	}
}

// Page is one page of a list.
type Page[T any] struct {
	Items      []T
	NextCursor string // "" on the last page
	// IndexedSeq is the seq the answering node had indexed when it answered
	// (X-Eye-Indexed-Seq): every event up to it is visible to this query.
	IndexedSeq uint64
}

// SessionEventsPage returns one page of a session's events, ordered by
// timestamp (ties by seq); cursor is "" for the first page.
func (c *Client) SessionEventsPage(ctx context.Context, sessionID string, q Query, cursor string) (Page[StoredEvent], error) {
	if sessionID == "" {
		return Page[StoredEvent]{}, errors.New("session events: empty session id")
	}
	v := url.Values{}
	setCommon(v, q.From, q.To, q.Limit, q.Desc, q.MinSeq, q.Wait)
	return getPage[StoredEvent](ctx, c, "/v1/sessions/"+url.PathEscape(sessionID)+"/events", v, cursor, "events", q.Wait)
}

// EventsPage returns one page of events by category (and name) and app in
// a time range; with no Category, every event in the range.
func (c *Client) EventsPage(ctx context.Context, q Query, cursor string) (Page[StoredEvent], error) {
	return getPage[StoredEvent](ctx, c, "/v1/events", q.values(), cursor, "events", q.Wait)
}

// ErrorsPage returns one page of events that failed validation, ordered by
// received_at.
func (c *Client) ErrorsPage(ctx context.Context, q ErrorQuery, cursor string) (Page[ErrorRecord], error) {
	return getPage[ErrorRecord](ctx, c, "/v1/errors", q.values(), cursor, "errors", q.Wait)
}

// SessionEvents iterates over a session's events, page by page:
//
//	for ev, err := range c.SessionEvents(ctx, sid, client.Query{}) {
//		if err != nil { return err }
//		...
//	}
//
// An error is yielded once, as the last element.
func (c *Client) SessionEvents(ctx context.Context, sessionID string, q Query) iter.Seq2[StoredEvent, error] {
	return paginate(ctx, func(ctx context.Context, cursor string) (Page[StoredEvent], error) {
		return c.SessionEventsPage(ctx, sessionID, q, cursor)
	})
}

// Events iterates over the events q selects, following cursors.
func (c *Client) Events(ctx context.Context, q Query) iter.Seq2[StoredEvent, error] {
	return paginate(ctx, func(ctx context.Context, cursor string) (Page[StoredEvent], error) {
		return c.EventsPage(ctx, q, cursor)
	})
}

// Errors iterates over the events that failed validation, following cursors.
func (c *Client) Errors(ctx context.Context, q ErrorQuery) iter.Seq2[ErrorRecord, error] {
	return paginate(ctx, func(ctx context.Context, cursor string) (Page[ErrorRecord], error) {
		return c.ErrorsPage(ctx, q, cursor)
	})
}

func paginate[T any](ctx context.Context, fetch func(context.Context, string) (Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		cursor := ""
		for {
			p, err := fetch(ctx, cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range p.Items {
				if !yield(it, nil) {
					return
				}
			}
			if p.NextCursor == "" || len(p.Items) == 0 {
				return
			}
			cursor = p.NextCursor
		}
	}
}

func getPage[T any](ctx context.Context, c *Client, path string, v url.Values, cursor, field string, wait time.Duration) (Page[T], error) {
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path, query: v, idempotent: true, extraTimeout: wait})
	if err != nil {
		return Page[T]{}, fmt.Errorf("query %s: %w", path, err)
	}
	var body struct {
		Events []T     `json:"events"`
		Errors []T     `json:"errors"`
		Next   *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		return Page[T]{}, fmt.Errorf("decode answer of %s: %w", path, err)
	}
	p := Page[T]{Items: body.Events}
	if field == "errors" {
		p.Items = body.Errors
	}
	if body.Next != nil {
		p.NextCursor = *body.Next
	}
	p.IndexedSeq, _ = strconv.ParseUint(resp.header.Get("X-Eye-Indexed-Seq"), 10, 64)
	return p, nil
}
