package index

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
)

// Retention (API.md, "Data lifecycle"): the cluster's cut (Rules.RetainFrom,
// a seq the leader decides by received_at and replicates) hides the events
// below it from every query at once (scan skips their keys), and the
// indexer deletes their keys in the background, chunk by chunk, taking
// turns with new events and revalidations; m "purged" records how far it
// got, in the same batch as the deletions, so a restart resumes there.
// log/ drops a segment only once the index has purged past it (PurgedBelow),
// since the keys of an event are found from the event itself.

// purgeChunk is how many events one purge batch reads from the log.
const purgeChunk = 2048

// retainFrom is the first seq queries may return (1 when nothing is cut).
func (ix *Index) retainFrom() uint64 {
	if ix.cfg.Rules == nil {
		return 1
	}
	return max(ix.cfg.Rules.RetainFrom(), 1)
}

// PurgedBelow returns the seq below which the index holds no keys of
// expired events any more: log/ may drop what is below it.
func (ix *Index) PurgedBelow() uint64 { return ix.purgedPub.Load() }

// purgeDue reports whether events below the cut wait to be purged. The
// caller holds writeMu.
func (ix *Index) purgeDue() bool {
	return ix.purged < min(ix.retainFrom(), ix.cursor+1)
}

// purgeBatch deletes, in one Pebble batch, the keys of up to purgeChunk
// events below the retention cut (and that this node has indexed), with
// the counters they were part of and the new m "purged". An event's keys
// are found from the event as it is in the log: the session, category,
// name and timestamp give its s, c, n and t keys, its received_at its x
// key, its app and id its dedupe key (deleted when it names this seq). A
// tombstone (an erased event) has none left. The caller holds writeMu and
// mu for reading.
func (ix *Index) purgeBatch() (n int, advanced bool, err error) {
	start := time.Now()
	upTo := min(ix.retainFrom(), ix.cursor+1) // exclusive
	from := ix.purged
	if first := ix.cfg.Source.FirstSeq(); from < first {
		from = min(first, upTo) // the log no longer holds them: nothing to find
	}
	count := min(upTo-from, purgeChunk)
	w := &ix.state
	b := w.roundBatch(ix.db)
	defer b.Reset()
	w.rollup.reset() // deleteEventKeys takes the expired events from the counts
	var events, errs uint64
	if count > 0 {
		_, err = ix.cfg.Source.ReadFrom(from, int(count), func(seq uint64, env *theeye.Envelope) error {
			valid, failed, err := ix.deleteEventKeys(b, seq, env)
			if valid {
				events++
			}
			if failed {
				errs++
			}
			return err
		})
		if err != nil {
			return 0, false, fmt.Errorf("purge from seq %d: %w", from, err)
		}
	}
	if err := ix.applyRollup(b); err != nil {
		return 0, false, fmt.Errorf("purge from seq %d: %w", from, err)
	}
	next := from + count
	totals := ix.totals
	totals.Events -= min(events, totals.Events)
	totals.Errors -= min(errs, totals.Errors)
	if err := w.setMeta(b, metaValue{metaPurged, next}, metaValue{metaEvents, totals.Events}, metaValue{metaErrors, totals.Errors}); err != nil {
		return 0, false, err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, false, fmt.Errorf("commit purge [%d, %d): %w", from, next, err)
	}
	ix.purged, ix.totals = next, totals
	ix.publish()
	if !ix.purgeDue() {
		// log/ deletes the segments below PurgedBelow, so it moves only
		// once the deletions are on disk (the index has no WAL): one
		// flush when a purge is through, not one per chunk.
		if err := ix.db.Flush(); err != nil {
			return 0, true, fmt.Errorf("flush purge [%d, %d): %w", from, next, err)
		}
		ix.purgedPub.Store(ix.purged)
	}
	ix.m.purged.Add(float64(count))
	ix.log.Debug("purged expired events", "from", from, "to", next, "took", time.Since(start))
	return 0, true, nil
}

// deleteEventKeys adds to b the deletion of every key the event at seq
// may have, and says whether it was a valid event and whether a failed one
// (both false for a duplicate, which has no keys, and for a tombstone).
func (ix *Index) deleteEventKeys(b *pebble.Batch, seq uint64, env *theeye.Envelope) (valid, failed bool, err error) {
	if len(env.Raw) == 0 {
		return false, false, nil
	}
	w := &ix.state
	w.key = appendErrorKey(w.key[:0], env.ReceivedAt, seq)
	if failed, err = ix.has(w.key); err != nil {
		return false, false, err
	}
	ev, _ := theeye.ParseValidEvent(env.Raw, env.ReceivedTime(), theeye.DefaultPolicy())
	if failed {
		if err := b.Delete(w.key, nil); err != nil {
			return false, false, fmt.Errorf("batch delete: %w", err)
		}
		if ev.SessionID != "" {
			w.key = appendFailedKey(w.key[:0], ev.SessionID, seq)
			if err := b.Delete(w.key, nil); err != nil {
				return false, false, fmt.Errorf("batch delete: %w", err)
			}
		}
	}
	if ev.SessionID != "" && ev.Category != "" && ev.Name != "" && !ev.Timestamp.IsZero() {
		ts := ev.Timestamp.UnixNano()
		w.key = appendSessionKey(w.key[:0], ev.SessionID, ts, seq)
		if valid, err = ix.has(w.key); err != nil {
			return false, false, err
		}
		if valid {
			if err := w.deleteValidKeys(b, ev.SessionID, ev.Category, ev.Name, ts, seq, nil); err != nil {
				return false, false, err
			}
			w.rollup.add(ts, ev.Category, ev.Name, -1)
		}
	}
	if ev.ID != "" {
		w.key = appendDedupeKey(w.key[:0], env.App, ev.ID)
		owned, err := ix.dedupeNames(w.key, seq)
		if err != nil {
			return false, false, err
		}
		if owned {
			if err := b.Delete(w.key, nil); err != nil {
				return false, false, fmt.Errorf("batch delete: %w", err)
			}
		}
	}
	return valid, failed, nil
}

// deleteValidKeys adds to b the deletion of the keys of a valid event:
// its session and category copies, its n and t pointers. Each is built in
// w.key (b.Delete copies it) and, when deleted is not nil, passed to it.
func (w *batchState) deleteValidKeys(b *pebble.Batch, session, category, name string, ts int64, seq uint64, deleted func([]byte)) error {
	del := func(k []byte) error {
		if err := b.Delete(k, nil); err != nil {
			return fmt.Errorf("batch delete: %w", err)
		}
		if deleted != nil {
			deleted(k)
		}
		return nil
	}
	w.key = appendSessionKey(w.key[:0], session, ts, seq)
	if err := del(w.key); err != nil {
		return err
	}
	w.key = appendCategoryKey(w.key[:0], category, ts, seq)
	if err := del(w.key); err != nil {
		return err
	}
	w.key = appendNameKey(w.key[:0], category, name, ts, seq)
	if err := del(w.key); err != nil {
		return err
	}
	w.key = appendTimeKey(w.key[:0], ts, seq)
	return del(w.key)
}

// has reports whether key k is in the index.
func (ix *Index) has(k []byte) (bool, error) {
	_, closer, err := ix.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read key: %w", err)
	}
	return true, closer.Close()
}
