package index

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
)

// The stream (GET /v1/stream) follows the committed index in seq order.
// Nothing of it runs in the indexer: a reader reads the log (the Source)
// by seq from where it is up to IndexedSeq, and for each event looks up
// the body the indexer committed under its category key. That key exists
// exactly when the event is valid, indexed and not a duplicate (a
// duplicate, an invalid event and an erased one have none; revalidation
// adds it), so the lookup decides all of it at once, and the bytes sent
// are the ones every query returns. The cost of a reader is its own: one
// pass over the log (decompression, one parse of each event's envelope
// fields) and one bloom-filtered seek per candidate, with no state in the
// index and no hook in its batch; readers wait on the index's
// notification (WaitIndexed), which one close wakes however many there are.

// StreamQuery selects the events of a stream; empty fields match every
// event.
type StreamQuery struct {
	Category string
	Name     string // requires Category
	App      string
	Session  string
}

// errChunkFull ends a ReadStream call once its bytes are reached.
var errChunkFull = errors.New("stream chunk full")

// ReadStream reads the log from seq from up to the last indexed seq, at
// most maxEvents log events, and calls fn in seq order with the seq and
// the rendered JSON (one line, as queries return it) of each valid
// indexed event that matches q; fn's slice is only valid during the call.
// It stops early after the event that brings the bytes passed to fn to
// maxBytes (when positive). next is the seq to read from on the next call:
// every seq below it has been looked at. Seqs below the retention cut and
// below the log's first seq are skipped. fn must not block (it runs under
// the index's read lock, with the log's reader held): copy, then write.
func (ix *Index) ReadStream(ctx context.Context, q StreamQuery, from uint64, maxEvents, maxBytes int, fn func(seq uint64, event []byte) error) (next uint64, err error) {
	src := ix.cfg.Source
	if src == nil {
		return from, errors.New("read stream: Config.Source is nil")
	}
	if q.Name != "" && q.Category == "" {
		return from, theeye.Errorf(theeye.EInvalidParam, "name %q needs a category", q.Name)
	}
	retain := ix.retainFrom()
	from = max(from, retain, src.FirstSeq(), 1)
	to := ix.IndexedSeq() // inclusive
	if from > to || maxEvents <= 0 {
		return from, nil
	}
	n := min(to-from+1, uint64(maxEvents))
	if err := ctx.Err(); err != nil {
		return from, fmt.Errorf("read stream: %w", err)
	}

	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return from, ErrClosed
	}
	var br bodyReader
	defer br.close()
	next, sent, visited := from, 0, 0
	_, err = src.ReadFrom(from, int(n), func(seq uint64, env *theeye.Envelope) error {
		if seq < next || seq >= from+n {
			return fmt.Errorf("source returned seq %d, outside [%d, %d)", seq, next, from+n)
		}
		next = seq + 1
		if visited++; visited%ctxCheckKeys == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		body, ok, err := ix.streamBody(&br, seq, env, &q)
		if err != nil || !ok {
			return err
		}
		sent += len(body)
		if err := fn(seq, body); err != nil {
			return err
		}
		if maxBytes > 0 && sent >= maxBytes {
			return errChunkFull
		}
		return nil
	})
	switch {
	case errors.Is(err, errChunkFull):
		return next, nil
	case err != nil:
		return next, fmt.Errorf("read stream from seq %d: %w", from, err)
	}
	// The log may hold no event at some seqs of the window (the indexer
	// skipped them too): the whole window has been looked at.
	return from + n, nil
}

// streamBody returns the committed body of the event at seq when it
// matches q: found under its category key, which only a valid, indexed,
// first-of-its-id event has.
func (ix *Index) streamBody(br *bodyReader, seq uint64, env *theeye.Envelope, q *StreamQuery) ([]byte, bool, error) {
	if len(env.Raw) == 0 || q.App != "" && env.App != q.App {
		return nil, false, nil // a tombstone (erased), or another app
	}
	// The policy does not matter: only the fields the keys are made of
	// are read, and an event whose fields do not parse has no keys.
	ev, _ := theeye.ParseValidEvent(env.Raw, env.ReceivedTime(), theeye.DefaultPolicy())
	if ev.SessionID == "" || ev.Category == "" || ev.Name == "" || ev.Timestamp.IsZero() {
		return nil, false, nil
	}
	if q.Category != "" && ev.Category != q.Category || q.Name != "" && ev.Name != q.Name ||
		q.Session != "" && ev.SessionID != q.Session {
		return nil, false, nil
	}
	return br.find(ix.db, ev.Category, ev.Timestamp.UnixNano(), seq)
}

// find returns the body stored under c/<category>/<ts>/<seq>, if any,
// valid until the next call.
func (r *bodyReader) find(db *pebble.DB, category string, ts int64, seq uint64) ([]byte, bool, error) {
	r.key = appendCategoryKey(r.key[:0], category, ts, seq)
	return r.read(db, seq)
}
