package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/verdict"
)

// batchState is the indexer's state for the batch in hand (the Pebble
// batch, the keys staged for it, the dedupe keys it set, what it adds to
// the totals) and the buffers reused from one batch to the next. It is
// guarded by Index.writeMu.
type batchState struct {
	batch  *pebble.Batch     // reused across batches (Reset), so its buffer is not grown again each time
	staged stagedWrites      // the batch's keys, applied to batch in key order at commit
	dedupe map[string][]byte // dedupe keys set earlier in the batch in hand -> their value
	key    []byte
	val    []byte
	app    []byte
	delta  batchDelta
	rollup rollupDelta // what the batch changes of the event counts (rollup.go)
}

// metaValue is one meta key (m/<name>) and its value.
type metaValue struct {
	name string
	v    uint64
}

// setMeta sets meta keys in b: the cursor and the counters go in the same
// batch as the keys they account for.
func (w *batchState) setMeta(b *pebble.Batch, ms ...metaValue) error {
	for _, m := range ms {
		w.key = appendMetaKey(w.key[:0], m.name)
		w.val = appendUint64(w.val[:0], m.v)
		if err := b.Set(w.key, w.val, nil); err != nil {
			return fmt.Errorf("batch meta %s: %w", m.name, err)
		}
	}
	return nil
}

// maxRetainedBatch is the largest batch buffer kept for the next batch
// (Pebble's default, 1 MiB, is less than a batch of 2048 events).
const maxRetainedBatch = 16 << 20

// roundBatch returns the Pebble batch an indexer round (new events, a
// revalidation chunk, a purge) writes to, the same one every round; the
// round Resets it when done.
func (w *batchState) roundBatch(db *pebble.DB) *pebble.Batch {
	if w.batch == nil {
		w.batch = db.NewBatch(pebble.WithMaxRetainedSizeBytes(maxRetainedBatch))
	}
	return w.batch
}

// batchDelta is what one batch adds to the totals.
type batchDelta struct {
	events, errors, duplicates uint64
	reasons                    [len(reasonCodes) + 1]uint64 // by reasonCodes index; last: other codes
}

// Run indexes the log until ctx is cancelled: each round reads what the log
// holds past the cursor, in batches, then waits for Source.Changed. It
// returns nil when ctx is cancelled (after committing the batch in hand)
// or ErrClosed when the index is closed. A batch that fails (a full disk,
// a read error) is retried with backoff, the index unhealthy meanwhile
// (Healthy says why) and each new cause logged once: the node stays up and
// serves what it has indexed.
func (ix *Index) Run(ctx context.Context) error {
	if ix.cfg.Source == nil {
		return errors.New("run indexer: Config.Source is nil")
	}
	ix.log.Info("indexer started", "indexed_seq", ix.IndexedSeq())
	backoff, last := time.Duration(0), ""
	for {
		changed := ix.cfg.Source.Changed() // before reading, so no append is missed
		var configChanged <-chan struct{}  // nil: never
		if ix.cfg.Rules != nil {
			configChanged = ix.cfg.Rules.ConfigChanged()
		}
		var retry <-chan time.Time // nil: no failure to retry
		if _, err := ix.indexAvailable(ctx); err != nil {
			switch {
			case ctx.Err() != nil && errors.Is(err, ctx.Err()):
				ix.log.Info("indexer stopped", "indexed_seq", ix.IndexedSeq())
				return nil
			case errors.Is(err, ErrClosed):
				return ErrClosed
			}
			ix.ioErr.Store(&err)
			ix.m.ioErrors.Inc()
			if msg := err.Error(); msg != last {
				ix.log.Error("indexing failed; retrying until it succeeds (the node is unready meanwhile)", "err", err)
				last = msg
			}
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
			retry = time.After(backoff)
		} else if last != "" {
			ix.ioErr.Store(nil)
			ix.log.Info("indexing works again", "indexed_seq", ix.IndexedSeq())
			backoff, last = 0, ""
		}
		select {
		case <-changed:
		case <-configChanged:
		case <-retry:
		case <-ctx.Done():
		case <-ix.done:
			return ErrClosed
		}
		if ctx.Err() != nil {
			ix.log.Info("indexer stopped", "indexed_seq", ix.IndexedSeq())
			return nil
		}
	}
}

// Healthy returns why the indexer cannot index now, or nil.
func (ix *Index) Healthy() error {
	if e := ix.ioErr.Load(); e != nil {
		return fmt.Errorf("the index cannot be written: %w", *e)
	}
	return nil
}

// IndexOnce indexes what the log holds now, in as many batches as needed,
// and returns how many events it read. It is meant for tests and tools; the
// server calls Run.
func (ix *Index) IndexOnce(ctx context.Context) (int, error) {
	if ix.cfg.Source == nil {
		return 0, errors.New("index: Config.Source is nil")
	}
	return ix.indexAvailable(ctx)
}

// indexAvailable runs batches until one makes no progress, checking ctx
// between batches.
func (ix *Index) indexAvailable(ctx context.Context) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("index: %w", err)
		}
		n, advanced, err := ix.indexBatch()
		total += n
		if err != nil || !advanced {
			return total, err
		}
	}
}

// indexBatch reads up to BatchSize events past the cursor, and commits
// their keys, the new cursor and the counters in one Pebble batch
// (invariant 5). It reports how many events it read and whether the cursor
// moved.
func (ix *Index) indexBatch() (n int, advanced bool, err error) {
	if err := ix.lockWriter(); err != nil {
		return 0, false, err
	}
	defer ix.unlockWriter()

	src := ix.cfg.Source
	if first := src.FirstSeq(); ix.cursor+1 < first {
		// The log starts above what this index holds: a node that caught
		// up from a snapshot past a retention cut, or an index rebuilt
		// after one. What the index holds below is of events the log no
		// longer has.
		if err := ix.restartAt(first); err != nil {
			return 0, false, err
		}
	}
	from := ix.cursor + 1
	last := src.LastSeq()
	// New events, a revalidation request whose position this node has
	// indexed (chunk by chunk) and the purge of expired events take turns,
	// so that none waits for another to finish.
	rev := ix.dueRevalidation()
	for range 3 {
		turn := ix.turn
		ix.turn = (ix.turn + 1) % 3
		switch {
		case turn == 0 && last >= from:
			return ix.indexEvents(from, last)
		case turn == 1 && rev != nil:
			return ix.revalidateChunk(rev)
		case turn == 2 && ix.purgeDue():
			return ix.purgeBatch()
		}
	}
	return 0, false, nil
}

// indexEvents indexes up to BatchSize events from seq from (at most up to
// last) in one batch. The caller holds writeMu and mu for reading.
func (ix *Index) indexEvents(from, last uint64) (n int, advanced bool, err error) {
	src := ix.cfg.Source
	if last < from {
		// Nothing new, or the log lost an unsynced tail that Raft is
		// replaying: wait for it to catch up with the cursor.
		return 0, false, nil
	}
	max := uint64(ix.cfg.BatchSize)
	if last-from+1 < max {
		max = last - from + 1
	}
	end := from + max // exclusive

	start := time.Now()
	w := &ix.state
	b := w.roundBatch(ix.db)
	defer b.Reset()
	w.staged.reset()
	clear(w.dedupe)
	w.delta = batchDelta{}
	w.rollup.reset()
	prev := ix.cursor
	n, err = src.ReadFrom(from, int(max), func(seq uint64, env *theeye.Envelope) error {
		if seq <= prev || seq >= end {
			return fmt.Errorf("source returned seq %d after %d, outside [%d, %d)", seq, prev, from, end)
		}
		prev = seq
		if err := ix.indexEvent(seq, env); err != nil {
			return fmt.Errorf("index seq %d: %w", seq, err)
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("read log from seq %d: %w", from, err)
	}
	cursor := prev
	if cursor == ix.cursor {
		if src.LastSeq() < end-1 {
			return 0, false, nil // the log shrank under us; wait for it
		}
		// The log holds later events but none in this window.
		ix.log.Warn("log holds no events in a window below its last seq; skipping it",
			"from", from, "to", end-1, "last_seq", src.LastSeq())
		cursor = end - 1
	}

	if err := w.staged.applyTo(b); err != nil {
		return 0, false, err
	}
	if err := ix.applyRollup(b); err != nil {
		return 0, false, err
	}
	totals := ix.totals
	totals.Events += w.delta.events
	totals.Errors += w.delta.errors
	totals.Duplicates += w.delta.duplicates
	if err := w.setMeta(b, metaValue{metaCursor, cursor}, metaValue{metaEvents, totals.Events},
		metaValue{metaErrors, totals.Errors}, metaValue{metaDuplicates, totals.Duplicates}); err != nil {
		return 0, false, err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, false, fmt.Errorf("commit batch [%d, %d]: %w", from, cursor, err)
	}

	ix.cursor = cursor
	totals.IndexedSeq = cursor
	ix.totals = totals
	ix.publish()
	ix.m.events.Add(float64(w.delta.events))
	ix.m.duplicates.Add(float64(w.delta.duplicates))
	for i, c := range w.delta.reasons {
		if c == 0 {
			continue
		}
		code := "other"
		if i < len(reasonCodes) {
			code = reasonCodes[i]
		}
		ix.m.errors.WithLabelValues(code).Add(float64(c))
	}
	ix.m.batch.Observe(time.Since(start).Seconds())
	return n, true, nil
}

// restartAt empties the index and makes it index from seq first on. The
// caller holds writeMu and mu for reading.
func (ix *Index) restartAt(first uint64) error {
	if ix.cursor > 0 {
		ix.log.Warn("the log starts above what the index holds; dropping the index and indexing from the log's first seq",
			"indexed_seq", ix.cursor, "log_first_seq", first)
	}
	drop := ix.cursor > 0
	if err := ix.durable(func(b *pebble.Batch) error {
		if drop {
			if err := b.DeleteRange([]byte{0}, appendMetaKey(nil, metaVersion), nil); err != nil {
				return err
			}
			if err := b.DeleteRange(append(appendMetaKey(nil, metaVersion), 0), []byte{0xff}, nil); err != nil {
				return err
			}
		}
		return ix.state.setMeta(b, metaValue{metaCursor, first - 1}, metaValue{metaPurged, first}, metaValue{metaEvents, 0},
			metaValue{metaErrors, 0}, metaValue{metaDuplicates, 0}, metaValue{metaRevalidated, ix.revalidated})
	}); err != nil {
		return fmt.Errorf("restart the index at seq %d: %w", first, err)
	}
	ix.cursor, ix.purged, ix.totals = first-1, first, Stats{IndexedSeq: first - 1}
	ix.publish()
	ix.purgedPub.Store(ix.purged)
	return nil
}

// dueRevalidation returns the first revalidation request not yet done
// whose position this node has indexed, or nil. The caller holds writeMu.
func (ix *Index) dueRevalidation() *theeye.Revalidation {
	if ix.cfg.Rules == nil {
		return nil
	}
	rs := ix.cfg.Rules.Revalidations(ix.revalidated)
	if len(rs) == 0 || rs[0].AtSeq > ix.cursor {
		return nil
	}
	return &rs[0]
}

// indexEvent judges one event and stages its keys for the batch in hand:
// the dedupe key, then either the body and its pointers (valid) or the
// error record.
func (ix *Index) indexEvent(seq uint64, env *theeye.Envelope) error {
	w := &ix.state
	if len(env.Raw) == 0 {
		return nil // a tombstone: an event erased from the log has no keys
	}
	ev, reasons := ix.judge.Judge(verdict.AtSeq(seq), env)

	// Invariant 7: an (app, id) already indexed, earlier in this batch or
	// in Pebble, is a duplicate when the raw event is the same (a retry),
	// and a duplicate_id_conflict error when it differs. Decided in log
	// order, so every node and every replay decides the same.
	if ev.ID != "" {
		w.key = appendDedupeKey(w.key[:0], env.App, ev.ID)
		prev, err := ix.seen(w.key)
		if err != nil {
			return err
		}
		if prev != nil {
			pseq, phash, err := decodeDedupeValue(prev)
			if err != nil {
				return fmt.Errorf("dedupe value of %q: %w", ev.ID, err)
			}
			if phash == eventHash(env.Raw) {
				w.delta.duplicates++
				return nil
			}
			reasons = append([]theeye.Reason{{Code: theeye.ReasonDuplicateIDConflict, Field: "/id",
				Message: fmt.Sprintf("id %q was already used by this app for a different event (seq %d); an identical retry would be ignored", ev.ID, pseq)}},
				reasons...)
		} else {
			w.val = appendDedupeValue(w.val[:0], seq, env.Raw)
			w.dedupe[string(w.key)] = append([]byte(nil), w.val...)
			w.staged.set(w.key, w.val)
		}
	}

	if len(reasons) > 0 {
		w.delta.errors++
		return ix.writeError(seq, env, &ev, reasons)
	}
	w.delta.events++
	return ix.writeEvent(seq, env, &ev)
}

// writeError stages the error record of seq and counts its reasons.
func (ix *Index) writeError(seq uint64, env *theeye.Envelope, ev *theeye.Event, reasons []theeye.Reason) error {
	w := &ix.state
	for _, r := range reasons {
		i := len(reasonCodes)
		for j, c := range reasonCodes {
			if c == r.Code {
				i = j
				break
			}
		}
		w.delta.reasons[i]++
	}
	w.key = appendErrorKey(w.key[:0], env.ReceivedAt, seq)
	w.val = appendErrorHeader(w.val[:0], reasonMask(reasons), env.App, ev.Category, ev.Name)
	w.val = appendErrorRecord(w.val, seq, env, ev, reasons)
	w.staged.set(w.key, w.val)
	if ev.SessionID != "" {
		// Erasure finds a session's failed events through f.
		w.key = appendFailedKey(w.key[:0], ev.SessionID, seq)
		w.val = appendUint64(w.val[:0], uint64(env.ReceivedAt))
		w.staged.set(w.key, w.val)
	}
	return nil
}

// writeEvent stages the bodies and the pointers of a valid event: the
// body under its session key and under its category key (a session or a
// category query is one range scan), the pointers n and t naming the
// category copy (n by its own key, t by the category in its value).
func (ix *Index) writeEvent(seq uint64, env *theeye.Envelope, ev *theeye.Event) error {
	w := &ix.state
	ts := ev.Timestamp.UnixNano()
	w.val = appendAppValue(w.val[:0], env.App, "")
	w.val = appendEvent(w.val, seq, env, ev)
	w.key = appendSessionKey(w.key[:0], ev.SessionID, ts, seq)
	w.staged.set(w.key, w.val)
	w.key = appendCategoryKey(w.key[:0], ev.Category, ts, seq)
	w.staged.set(w.key, w.val)
	w.app = appendAppValue(w.app[:0], env.App, "")
	w.key = appendNameKey(w.key[:0], ev.Category, ev.Name, ts, seq)
	w.staged.set(w.key, w.app)
	w.app = appendAppValue(w.app[:0], env.App, ev.Category)
	w.key = appendTimeKey(w.key[:0], ts, seq)
	w.staged.set(w.key, w.app)
	w.rollup.add(ts, ev.Category, ev.Name, 1)
	return nil
}

// seen returns the value of dedupe key k when it was set earlier in this
// batch or is in Pebble, else nil.
func (ix *Index) seen(k []byte) ([]byte, error) {
	if v, ok := ix.state.dedupe[string(k)]; ok {
		return v, nil
	}
	v, closer, err := ix.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dedupe key: %w", err)
	}
	v = append([]byte(nil), v...)
	return v, closer.Close()
}

// stagedWrites holds a batch's keys and values until commit, then applies
// them to the Pebble batch sorted by key. The memtable is a skiplist: keys
// inserted in order find their place from the previous one's, where the
// order the events come in (a session here, a category there) makes each
// insert search from the top. Measured with BenchmarkIndexBatch. A key set
// twice keeps its last value (the sort is stable).
type stagedWrites struct {
	arena []byte
	ents  []stagedEntry
}

type stagedEntry struct{ k0, k1, v1 int } // arena[k0:k1] key, arena[k1:v1] value

func (s *stagedWrites) reset() {
	s.arena = s.arena[:0]
	s.ents = s.ents[:0]
}

func (s *stagedWrites) set(k, v []byte) {
	k0 := len(s.arena)
	s.arena = append(s.arena, k...)
	k1 := len(s.arena)
	s.arena = append(s.arena, v...)
	s.ents = append(s.ents, stagedEntry{k0, k1, len(s.arena)})
}

func (s *stagedWrites) applyTo(b *pebble.Batch) error {
	a := s.arena
	slices.SortStableFunc(s.ents, func(x, y stagedEntry) int { return bytes.Compare(a[x.k0:x.k1], a[y.k0:y.k1]) })
	for _, e := range s.ents {
		if err := b.Set(a[e.k0:e.k1], a[e.k1:e.v1], nil); err != nil {
			return fmt.Errorf("batch key: %w", err)
		}
	}
	return nil
}
