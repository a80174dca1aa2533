// Package client is the Go client of The Eye: it sends events in batches
// with retries, failover and idempotency ids, queries them back with
// iterators that follow cursors, drives the admin routes (apps, keys,
// schemas, cluster) and downloads backups, checked as they are written
// (Backup). It speaks the HTTP API of API.md and nothing else.
//
//	c, err := client.New(client.Config{Servers: []string{"http://eye1:8080", "http://eye2:8080"}, Key: key})
//	if err != nil { return err }
//	defer c.Close(ctx) // sends what is queued; returns the batches that failed
//	err = c.Track(ctx, client.Event{SessionID: sid, Category: "page interaction", Name: "pageview",
//		Data: map[string]any{"host": "www.example.com", "path": "/"}, Timestamp: time.Now()})
//	if err := c.Flush(ctx); err != nil { return err } // every batch so far is stored, or reported here
//	for ev, err := range c.SessionEvents(ctx, sid, client.Query{MinSeq: c.Stats().LastSeq}) {
//		if err != nil { return err }
//		fmt.Println(ev.Seq, ev.Timestamp, ev.Category, ev.Name, string(ev.Data))
//	}
//
// # Sending
//
// Track encodes the event at once (assigning a ULID as its id when it has
// none, and the current time when it has no timestamp), queues it and
// returns. A batch is sent when it holds Config.BatchSize events or
// Config.BatchBytes bytes, or when its oldest event has waited
// Config.FlushInterval; Config.MaxInFlight batches travel at a time, as
// NDJSON. The queue holds at most Config.QueueSize events not yet
// acknowledged; when it is full Track blocks (Config.OnFull = Block) or
// returns ErrQueueFull (ReturnError). Nothing is ever dropped silently.
//
// Ingest sends a slice of events synchronously, outside the queue.
//
// # Retries, failover and idempotency
//
// Network errors and the statuses 429, 502, 503, 504 and 507 are retried up
// to Config.MaxRetries times, with exponential backoff between
// Config.RetryMin and Config.RetryMax and jitter, never sooner than the
// server's Retry-After. Network errors and 502/503/504 first fail over to
// the next of Config.Servers; a 429 (rate_limited: the key's limit;
// overloaded: the cluster indexes behind) and a 507 (insufficient_storage:
// the cluster is short of disk) are the cluster's answer and stay on the
// same node. The statuses
// 400, 401, 403, 404, 409, 413 and 415 are never retried: they come back as
// an *Error carrying the server's code ("unauthorized", "not_an_object",
// ...). Because every event carries an id and the server stores an event
// once per (app, id), a retry after a lost acknowledgement stores nothing
// twice. Admin calls that create something are retried only when the
// request provably never reached a server (a refused connection) or the
// server answered 429/503/507.
//
// # Failed batches
//
// A batch queued by Track fails for good when the server refuses it (4xx),
// when its retries are exhausted, or when Close gives up on it. Its events
// are then not stored by that request; they are counted in Stats().Failed
// and reported as one *BatchError, which holds their ids and their JSON as
// sent (so they can be logged or sent again, safely, with the same ids):
// to Config.OnError as it happens, and in the error of the next Flush or
// Close. Flush waits for every batch queued before it; Close also stops
// Track and, if its context ends first, fails what is left.
//
// # Queries
//
// SessionEvents, Events and Errors return Go 1.23 iterators
// (iter.Seq2[T, error]) that fetch page after page (Query.Limit is the page
// size) and yield an error, if any, as their last element. Query.MinSeq
// (say Stats().LastSeq, or Ack.Seq) makes the answering node wait until it
// has indexed that seq: read-your-writes on any node. SessionEventsPage,
// EventsPage and ErrorsPage return a single page and the node's indexed seq.
//
// # Streams and status
//
// Stream follows GET /v1/stream: each valid event of a StreamQuery, in seq
// order, from the live end, the start of the log or after a seq, handed to
// a callback. It reconnects (with the same retries and failover as the
// other calls) and resumes after the last event it handed over, so a
// consumer that stores that seq with its own writes copies every event
// exactly once. Status and StatusAt say whether an event sent with a given
// id is pending, indexed, failed or (one copy, by its seq) a duplicate.
//
// The package keeps no global state; every blocking call takes a context.
package client
