package index

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/verdict"
)

// RevalidationResult is what one revalidation request did on this node
// (the same on every node: see revalidateBatch).
type RevalidationResult struct {
	ID       uint64 `json:"id"`
	Checked  uint64 `json:"checked"`  // failed events judged again
	Accepted uint64 `json:"accepted"` // now valid: indexed as events, gone from the errors
	Failing  uint64 `json:"failing"`  // still failing, with their new reasons
}

// revalidateBatch runs one revalidation request in a Pebble batch of its
// own, when the cursor is exactly at rev.AtSeq: the error records it sees
// are then those of the events up to AtSeq, and it judges them against the
// schemas registered before rev.ID, so every node (and every rebuild)
// reaches the same verdicts. An event that now passes gets its body and
// pointers and loses its error record; one that still fails gets its
// record rewritten with the new reasons; a duplicate_id_conflict stays as
// it is. The result (r/<id>), the request's ID (m "revalidated") and the
// totals are written in the same batch. The caller holds writeMu and mu
// for reading.
func (ix *Index) revalidateBatch(rev *theeye.Revalidation) (n int, advanced bool, err error) {
	start := time.Now()
	f := errorFilter{category: rev.Category, name: rev.Name}
	if rev.Reason != "" {
		f.mask, _ = reasonBit(rev.Reason)
	}
	lo, hi, empty := timeRange([]byte{ksError}, rev.From, rev.To)

	// Collect the matching records first: the batch is not indexed, and
	// the iterator reads the database as of before it.
	type target struct {
		key      []byte
		seq      uint64
		conflict bool
	}
	var targets []target
	if !empty {
		it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return 0, false, fmt.Errorf("revalidation %d: new iterator: %w", rev.ID, err)
		}
		conflictBit, _ := reasonBit(theeye.ReasonDuplicateIDConflict)
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return 0, false, fmt.Errorf("revalidation %d: read error record: %w", rev.ID, err)
			}
			h, _, err := decodeErrorValue(v)
			if err != nil {
				it.Close()
				return 0, false, fmt.Errorf("revalidation %d: error record of seq %d: %w", rev.ID, seqOfKey(it.Key()), err)
			}
			if f.match(&h) {
				targets = append(targets, target{key: append([]byte(nil), it.Key()...), seq: seqOfKey(it.Key()), conflict: h.mask&conflictBit != 0})
			}
		}
		if err := it.Close(); err != nil {
			return 0, false, fmt.Errorf("revalidation %d: close iterator: %w", rev.ID, err)
		}
	}

	w := &ix.state
	if w.batch == nil {
		w.batch = ix.db.NewBatch(pebble.WithMaxRetainedSizeBytes(maxRetainedBatch))
	}
	b := w.batch
	defer b.Reset()
	w.staged.reset() // writeEvent and writeError stage; applied before commit
	w.delta = batchDelta{}
	res := revalidationResult{}
	for _, t := range targets {
		res.Checked++
		if t.conflict {
			res.Failing++ // the id was reused: no schema fixes that
			continue
		}
		found := false
		_, err := ix.cfg.Source.ReadFrom(t.seq, 1, func(seq uint64, env *theeye.Envelope) error {
			if seq != t.seq {
				return nil
			}
			found = true
			ev, reasons := ix.judge.Judge(verdict.AsOf(rev.ID), env)
			if len(reasons) > 0 {
				res.Failing++
				return ix.writeError(seq, env, &ev, reasons)
			}
			res.Accepted++
			if err := b.Delete(t.key, nil); err != nil {
				return fmt.Errorf("batch delete error record: %w", err)
			}
			return ix.writeEvent(seq, env, &ev)
		})
		if err != nil {
			return 0, false, fmt.Errorf("revalidation %d: seq %d: %w", rev.ID, t.seq, err)
		}
		if !found {
			res.Failing++ // not in the log (cannot happen: the log is never truncated)
		}
	}

	// The error records deleted above and the keys staged here never
	// coincide (an accepted event's record is deleted, a failing one's
	// rewritten), so applying the staged keys after the deletes is safe.
	if err := w.staged.applyTo(b); err != nil {
		return 0, false, fmt.Errorf("revalidation %d: %w", rev.ID, err)
	}
	totals := ix.totals
	totals.Events += res.Accepted
	totals.Errors -= min(res.Accepted, totals.Errors)
	w.key = appendRevalidationKey(w.key[:0], rev.ID)
	w.val = appendRevalidationResult(w.val[:0], res)
	if err := b.Set(w.key, w.val, nil); err != nil {
		return 0, false, fmt.Errorf("batch revalidation result: %w", err)
	}
	if err := w.setMeta(b, metaValue{metaRevalidated, rev.ID}, metaValue{metaEvents, totals.Events},
		metaValue{metaErrors, totals.Errors}); err != nil {
		return 0, false, err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, false, fmt.Errorf("commit revalidation %d: %w", rev.ID, err)
	}
	ix.revalidated = rev.ID
	ix.totals = totals
	ix.publish()
	ix.m.revalidated.WithLabelValues("accepted").Add(float64(res.Accepted))
	ix.m.revalidated.WithLabelValues("failing").Add(float64(res.Failing))
	ix.log.Info("revalidation done", "id", rev.ID, "at_seq", rev.AtSeq, "checked", res.Checked,
		"accepted", res.Accepted, "failing", res.Failing, "took", time.Since(start))
	return 0, true, nil
}

// WaitRevalidation waits until this node has run revalidation request id
// and returns what it did. It returns an error wrapping ctx.Err() when ctx
// ends first, ErrClosed when the index closes.
func (ix *Index) WaitRevalidation(ctx context.Context, id uint64) (RevalidationResult, error) {
	for {
		ix.notifyMu.Lock()
		ch := ix.notify
		ix.notifyMu.Unlock()
		if ix.revalDone.Load() >= id {
			break
		}
		select {
		case <-ch:
		case <-ix.done:
			return RevalidationResult{}, ErrClosed
		case <-ctx.Done():
			return RevalidationResult{}, fmt.Errorf("wait for revalidation %d (indexed seq %d): %w", id, ix.indexed.Load(), ctx.Err())
		}
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return RevalidationResult{}, ErrClosed
	}
	v, closer, err := ix.db.Get(appendRevalidationKey(nil, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return RevalidationResult{}, theeye.Errorf(theeye.ENotFound, "no revalidation %d on this node", id)
	}
	if err != nil {
		return RevalidationResult{}, fmt.Errorf("read revalidation %d: %w", id, err)
	}
	defer closer.Close()
	r, err := decodeRevalidationResult(v)
	if err != nil {
		return RevalidationResult{}, fmt.Errorf("read revalidation %d: %w", id, err)
	}
	return RevalidationResult{ID: id, Checked: r.Checked, Accepted: r.Accepted, Failing: r.Failing}, nil
}
