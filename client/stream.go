package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// StreamQuery selects the events of a stream (GET /v1/stream). Empty
// filters match every event.
type StreamQuery struct {
	Category  string
	Name      string // needs Category
	App       string
	SessionID string
	// FromSeq, when more than 0, starts the stream after this seq: a
	// consumer that stores the last seq it handled with what it made of it
	// resumes there, and gets every later event once. FromStart starts it
	// at the beginning of the log; with neither, it starts at the live end
	// of the node that answers first.
	FromSeq   uint64
	FromStart bool
	// IdleTimeout is how long the client waits for a byte (an event or the
	// server's keep-alive, sent every 15 s) before it takes the connection
	// for dead and reconnects; default 45 s.
	IdleTimeout time.Duration
}

// DefaultStreamIdleTimeout is StreamQuery.IdleTimeout's default: three
// keep-alives missed.
const DefaultStreamIdleTimeout = 45 * time.Second

// maxStreamLine bounds one line of a stream (an event is at most the
// server's --max-event, 64 KiB by default, rendered).
const maxStreamLine = 16 << 20

func (q StreamQuery) values(after uint64, resume bool) url.Values {
	v := url.Values{}
	set(v, "category", q.Category)
	set(v, "name", q.Name)
	set(v, "app", q.App)
	set(v, "session_id", q.SessionID)
	if resume {
		v.Set("from_seq", strconv.FormatUint(after, 10))
	}
	return v
}

// Stream follows the events q selects, calling fn with each in seq order,
// until ctx is done (it returns ctx's error), fn returns an error (it
// returns that error), or a server refuses the stream for good (an *Error:
// a bad parameter, a bad key). A dropped connection, a node going away or
// one that says it is shutting down, and a stream silent for
// q.IdleTimeout are retried like the other calls (backoff with jitter,
// Retry-After, failover to the next of Config.Servers; Config.MaxRetries
// failures in a row end it), and the stream resumes after the last event
// fn was given: no gap, no event twice, on whichever node answers (one
// that has not indexed that far yet waits until it has).
func (c *Client) Stream(ctx context.Context, q StreamQuery, fn func(StoredEvent) error) error {
	if q.Name != "" && q.Category == "" {
		return errors.New("stream: Name needs Category")
	}
	if q.IdleTimeout <= 0 {
		q.IdleTimeout = DefaultStreamIdleTimeout
	}
	st := streamState{after: q.FromSeq, resume: q.FromSeq > 0 || q.FromStart}
	n := len(c.servers)
	si := int(c.preferred.Load()) % n
	failures, round, tried := 0, 0, 1
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		progress, err := c.streamOnce(ctx, c.servers[si], q, &st, fn)
		if err == nil || ctx.Err() != nil {
			continue // the loop's check returns ctx's error
		}
		var fe *fnError
		if errors.As(err, &fe) {
			return fe.err
		}
		var e *Error
		if errors.As(err, &e) && !retryableStatus(e.Status) && e.Status != 0 {
			return fmt.Errorf("stream: %w", plainError(err))
		}
		if progress {
			failures, round, tried = 0, 0, 1
		}
		failures++
		if c.cfg.MaxRetries >= 0 && failures > c.cfg.MaxRetries {
			return fmt.Errorf("stream: giving up after %d attempts in a row: %w", failures, err)
		}
		var delay, retryAfter time.Duration
		var se *statusError
		if errors.As(err, &se) {
			retryAfter = min(se.retryAfter, maxRetryAfter)
		}
		next := si
		if e == nil || (e.Status != http.StatusTooManyRequests && e.Status != http.StatusInsufficientStorage) {
			next = (si + 1) % n
		}
		if next != si && tried < n {
			tried++
		} else {
			delay = max(c.backoff(round), retryAfter)
			round++
			tried = 1
		}
		c.retried.Add(1)
		c.log.Info("stream interrupted; resuming", "server", c.servers[si], "next", c.servers[next], "after_seq", st.after, "delay", delay, "err", err)
		si = next
		_ = sleepCtx(ctx, delay) // a done ctx ends the next attempt
	}
}

// streamState is where a stream stands across its connections.
type streamState struct {
	after  uint64 // the last seq handed to fn (or the start)
	resume bool   // after is a position; false: the live end
}

// fnError is an error of the caller's fn: it ends the stream as it is.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// streamOnce runs one connection of a stream. progress reports whether
// the connection was established (a 200), so failures in a row are
// counted from there.
func (c *Client) streamOnce(ctx context.Context, server string, q StreamQuery, st *streamState, fn func(StoredEvent) error) (progress bool, err error) {
	c.requests.Add(1)
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	u := server + "/v1/stream"
	if v := q.values(st.after, st.resume); len(v) > 0 {
		u += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("build request GET %s: %w", u, err)
	}
	if c.cfg.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Key)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "text/event-stream")
	// The answer's headers, at least, must come within a request timeout.
	headers := time.AfterFunc(c.cfg.RequestTimeout, func() { cancel(errStreamIdle) })
	resp, err := c.http.Do(req)
	headers.Stop()
	if err != nil {
		if errors.Is(context.Cause(cctx), errStreamIdle) {
			return false, fmt.Errorf("GET %s: no answer within %s", u, c.cfg.RequestTimeout)
		}
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return false, &statusError{err: parseError(resp.StatusCode, b, server), retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if !st.resume {
		// A live start: pin it, so a reconnect before the first event
		// loses nothing.
		if after, err := strconv.ParseUint(resp.Header.Get("X-Eye-Stream-After"), 10, 64); err == nil {
			st.after, st.resume = after, true
		}
	}
	c.preferred.Store(int32(indexOf(c.servers, server)))
	idle := time.AfterFunc(q.IdleTimeout, func() { cancel(errStreamIdle) })
	defer idle.Stop()
	p := newSSEParser(resp.Body, maxStreamLine)
	p.onLine = func() { idle.Reset(q.IdleTimeout) }
	for {
		m, err := p.next()
		if err != nil {
			if errors.Is(context.Cause(cctx), errStreamIdle) {
				return true, fmt.Errorf("stream from %s: nothing received for %s", server, q.IdleTimeout)
			}
			if errors.Is(err, io.EOF) {
				return true, fmt.Errorf("stream from %s ended", server)
			}
			return true, fmt.Errorf("read stream from %s: %w", server, err)
		}
		if err := c.streamMessage(server, &m, st, fn); err != nil {
			return true, err
		}
	}
}

// errStreamIdle cancels a connection that stayed silent.
var errStreamIdle = errors.New("stream idle")

// streamMessage hands an event to fn (once: an event at or below the last
// one handed over is skipped) or turns an error event into an error.
func (c *Client) streamMessage(server string, m *sseMessage, st *streamState, fn func(StoredEvent) error) error {
	switch m.event {
	case "event":
		var ev StoredEvent
		if err := json.Unmarshal(m.data, &ev); err != nil {
			return fmt.Errorf("stream from %s: %w", server, err)
		}
		if m.hasID && m.id != strconv.FormatUint(ev.Seq, 10) {
			return fmt.Errorf("stream from %s: event id %q does not match its seq %d", server, m.id, ev.Seq)
		}
		if st.resume && ev.Seq <= st.after {
			return nil
		}
		if err := fn(ev); err != nil {
			return &fnError{err}
		}
		st.after, st.resume = ev.Seq, true
	case "error":
		e := parseError(0, m.data, server)
		return fmt.Errorf("the stream ended: %w", e)
	}
	return nil
}

// indexOf returns the index of s in ss (0 when absent).
func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return 0
}
