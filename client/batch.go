package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// This file holds the asynchronous path: Track queues encoded events, cuts
// them into batches (on BatchSize, BatchBytes or FlushInterval), and
// MaxInFlight workers send each batch with do's retries and failover.
//
// Accounting: an event is "queued" from Track until its batch is resolved,
// either acknowledged (Stats.Sent) or failed for good (Stats.Failed, a
// *BatchError to OnError and to the next Flush or Close). Nothing leaves the
// queue any other way.

type item struct {
	id  string
	raw []byte // the event's JSON on one line
}

type batch struct {
	items []item
	bytes int
	done  chan struct{} // closed once the batch is resolved
}

// Track queues ev to be sent in a batch and returns at once (or, with
// OnFull Block and a full queue, once there is room). It assigns ev an
// idempotency id when it has none and encodes it now, so the caller may
// reuse ev's Data afterwards. Errors: an event that does not encode,
// ErrQueueFull, ErrClosed, or ctx's error. Send failures come later, from
// Flush, Close and Config.OnError.
func (c *Client) Track(ctx context.Context, ev Event) error {
	raw, id, err := ev.encode(make([]byte, 0, 256), c.now())
	if err != nil {
		return fmt.Errorf("track: %w", err)
	}
	return c.enqueue(ctx, item{id: id, raw: raw})
}

// TrackRaw queues one event given as a JSON object, sent as it is (compacted
// onto one line) with an "id" added when it has none. Use it to forward
// events that were already JSON; the server validates them as it does any
// other. A value that is not a JSON object is an error.
func (c *Client) TrackRaw(ctx context.Context, raw json.RawMessage) error {
	b, id, err := prepareRaw(raw)
	if err != nil {
		return fmt.Errorf("track raw event: %w", err)
	}
	return c.enqueue(ctx, item{id: id, raw: b})
}

func (c *Client) enqueue(ctx context.Context, it item) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("track: %w", err)
	}
	c.mu.Lock()
	for {
		if c.closed {
			c.mu.Unlock()
			return ErrClosed
		}
		if c.queued < c.cfg.QueueSize {
			break
		}
		if c.cfg.OnFull == ReturnError {
			c.mu.Unlock()
			return ErrQueueFull
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("track: wait for room in the queue: %w", ctx.Err())
		}
		c.mu.Lock()
	}
	size := len(it.raw) + 1
	if len(c.buf) > 0 && c.bufBytes+size > c.cfg.BatchBytes {
		c.cutLocked()
	}
	if len(c.buf) == 0 {
		gen := c.bufGen
		c.timer = time.AfterFunc(c.cfg.FlushInterval, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.bufGen == gen {
				c.cutLocked()
			}
		})
	}
	c.buf = append(c.buf, it)
	c.bufBytes += size
	c.queued++
	if len(c.buf) >= c.cfg.BatchSize || c.bufBytes >= c.cfg.BatchBytes {
		c.cutLocked()
	}
	c.mu.Unlock()
	return nil
}

// cutLocked turns the buffer into a batch for the workers.
func (c *Client) cutLocked() {
	if len(c.buf) == 0 {
		return
	}
	b := &batch{items: c.buf, bytes: c.bufBytes, done: make(chan struct{})}
	c.buf = make([]item, 0, c.cfg.BatchSize)
	c.bufBytes = 0
	c.bufGen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.ready = append(c.ready, b)
	c.pending[b] = struct{}{}
	c.broadcastLocked()
}

// broadcastLocked wakes everyone waiting for a change.
func (c *Client) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// worker sends ready batches until the client is closed and none is left.
func (c *Client) worker() {
	defer c.workers.Done()
	for {
		c.mu.Lock()
		for len(c.ready) == 0 {
			if c.closed {
				c.mu.Unlock()
				return
			}
			ch := c.changed
			c.mu.Unlock()
			<-ch
			c.mu.Lock()
		}
		b := c.ready[0]
		c.ready[0] = nil
		c.ready = c.ready[1:]
		c.mu.Unlock()
		c.send(b)
	}
}

// send sends one batch and resolves it.
func (c *Client) send(b *batch) {
	body := make([]byte, 0, b.bytes)
	ids := make([]string, len(b.items))
	for i, it := range b.items {
		body = append(body, it.raw...)
		body = append(body, '\n')
		ids[i] = it.id
	}
	ack, err := c.ingest(c.bg, body, len(ids))
	var berr *BatchError
	if err != nil {
		events := make([][]byte, len(b.items))
		for i, it := range b.items {
			events[i] = it.raw
		}
		berr = &BatchError{IDs: ids, Events: events, Err: err}
		c.failed.Add(uint64(len(ids)))
		c.log.Warn("batch failed; its events are reported to OnError and Flush", "events", len(ids), "err", err)
		if c.cfg.OnError != nil {
			c.cfg.OnError(berr)
		}
	} else {
		c.noteAck(ack)
	}
	c.mu.Lock()
	delete(c.pending, b)
	c.queued -= len(b.items)
	if berr != nil {
		if len(c.errs) < maxErrs {
			c.errs = append(c.errs, berr)
		} else {
			c.lostErrs++
		}
	}
	c.broadcastLocked()
	c.mu.Unlock()
	close(b.done)
}

// ingest sends an NDJSON body of n events and reads the ack.
func (c *Client) ingest(ctx context.Context, body []byte, n int) (Ack, error) {
	resp, err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/events", body: body,
		contentType: "application/x-ndjson", gzip: c.cfg.Gzip, idempotent: true})
	if err != nil {
		return Ack{}, err
	}
	var a Ack
	if err := json.Unmarshal(resp.body, &a); err != nil {
		return Ack{}, fmt.Errorf("decode ingest answer %q: %w", truncate(resp.body, 200), err)
	}
	if a.Accepted != n {
		return a, fmt.Errorf("the server accepted %d of %d events", a.Accepted, n)
	}
	return a, nil
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// takeErrorsLocked returns the batch errors kept since the last call.
func (c *Client) takeErrorsLocked() error {
	errs := c.errs
	if c.lostErrs > 0 {
		errs = append(errs, errors.New(strconv.Itoa(c.lostErrs)+" more batches failed (each was passed to OnError and counted in Stats.Failed)"))
	}
	c.errs, c.lostErrs = nil, 0
	return errors.Join(errs...)
}

// Flush sends what Track has queued and waits until every batch queued
// before the call is resolved. It returns the *BatchError of every batch
// that failed since the previous Flush or Close (joined with errors.Join),
// or ctx's error if it ends first (the batches keep going).
func (c *Client) Flush(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.cutLocked()
	waits := make([]chan struct{}, 0, len(c.pending))
	for b := range c.pending {
		waits = append(waits, b.done)
	}
	c.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return fmt.Errorf("flush: %w", ctx.Err())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takeErrorsLocked()
}

// Close stops Track, sends everything queued and waits for it, then
// releases the client's connections. If ctx ends first, the batches still
// queued or in flight are abandoned: each fails with ctx's error, is counted
// in Stats.Failed, passed to OnError and returned here. Close returns the
// batch errors not yet returned by Flush, joined with ctx's error if any.
// A second Close returns ErrClosed.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.cutLocked()
	c.closed = true
	c.broadcastLocked()
	c.mu.Unlock()

	done := make(chan struct{})
	go func() { c.workers.Wait(); close(done) }()
	var ctxErr error
	select {
	case <-done:
	case <-ctx.Done():
		ctxErr = fmt.Errorf("close: %w", ctx.Err())
		c.bgCancel() // in-flight sends stop; the workers fail what is left
		<-done
	}
	c.bgCancel()
	if c.ownHTTP {
		c.http.CloseIdleConnections()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.takeErrorsLocked(), ctxErr)
}
