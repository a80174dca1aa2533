package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/verdict"
)

// RevalidationResult is what one revalidation request did on this node
// (the same on every node: see revalidateChunk), so far or in all.
type RevalidationResult struct {
	ID       uint64 `json:"id"`
	Status   string `json:"status"`   // pending (not started here), running, done
	Checked  uint64 `json:"checked"`  // failed events judged again
	Accepted uint64 `json:"accepted"` // now valid: indexed as events, gone from the errors
	Failing  uint64 `json:"failing"`  // still failing, with their new reasons
}

// Statuses of a revalidation on a node.
const (
	RevalidationPending = "pending"
	RevalidationRunning = "running"
	RevalidationDone    = "done"
)

// revalidationChunk bounds the error records one chunk judges; a chunk
// also stops after chunkKeys keys visited. Between chunks the indexer's
// lock is released and a batch of new events may be indexed.
const revalidationChunk = 512

// revalidateChunk runs the next chunk of revalidation request rev, in a
// Pebble batch of its own, once this node has indexed at least up to
// rev.AtSeq. It judges the matching error records of events with seq <=
// AtSeq (later ones are not the request's, whenever they were indexed)
// by the rules registered before rev.ID (verdict.AsOf), so every node (and
// every rebuild) reaches the same verdicts whatever else it indexed in
// between. An event that now passes gets its body and pointers and loses
// its error record; one that still fails gets its record rewritten with
// the new reasons; a duplicate_id_conflict stays as it is. The progress
// (r/<id>: counts and the key the next chunk starts at) and the totals are
// written in the same batch, so a chunk is done once or not at all, and a
// restart resumes where the last committed chunk ended. Nothing of the
// request is held in memory between chunks. The caller holds writeMu and
// mu for reading.
func (ix *Index) revalidateChunk(rev *theeye.Revalidation) (n int, advanced bool, err error) {
	start := time.Now()
	prog, err := ix.revalidationProgress(rev.ID)
	if err != nil {
		return 0, false, err
	}
	lo, hi, empty := timeRange([]byte{ksError}, rev.From, rev.To)
	if prog.Resume != nil && bytes.Compare(prog.Resume, lo) > 0 {
		lo = prog.Resume
	}

	targets, resume, err := ix.revalidationTargets(rev, lo, hi, empty)
	if err != nil {
		return 0, false, err
	}

	w := &ix.state
	b := w.roundBatch(ix.db)
	defer b.Reset()
	w.staged.reset() // writeEvent and writeError stage; applied before commit
	w.delta = batchDelta{}
	w.rollup.reset() // writeEvent counts the events that now pass
	chunk := revalidationResult{}
	for _, t := range targets {
		chunk.Checked++
		if t.conflict {
			chunk.Failing++ // the id was reused: no schema fixes that
			continue
		}
		found := false
		_, err := ix.cfg.Source.ReadFrom(t.seq, 1, func(seq uint64, env *theeye.Envelope) error {
			if seq != t.seq {
				return nil
			}
			found = true
			if len(env.Raw) == 0 {
				return nil // erased since it failed: nothing to judge
			}
			ev, reasons := ix.judge.Judge(verdict.AsOf(rev.ID), env)
			if len(reasons) > 0 {
				chunk.Failing++
				return ix.writeError(seq, env, &ev, reasons)
			}
			chunk.Accepted++
			if err := b.Delete(t.key, nil); err != nil {
				return fmt.Errorf("batch delete error record: %w", err)
			}
			w.key = appendFailedKey(w.key[:0], ev.SessionID, seq)
			if err := b.Delete(w.key, nil); err != nil {
				return fmt.Errorf("batch delete: %w", err)
			}
			return ix.writeEvent(seq, env, &ev)
		})
		if err != nil {
			return 0, false, fmt.Errorf("revalidation %d: seq %d: %w", rev.ID, t.seq, err)
		}
		if !found {
			chunk.Failing++ // not in the log (cannot happen: the log is never truncated)
		}
	}

	// The error records deleted above and the keys staged here never
	// coincide (an accepted event's record is deleted, a failing one's
	// rewritten), so applying the staged keys after the deletes is safe.
	if err := w.staged.applyTo(b); err != nil {
		return 0, false, fmt.Errorf("revalidation %d: %w", rev.ID, err)
	}
	if err := ix.applyRollup(b); err != nil {
		return 0, false, fmt.Errorf("revalidation %d: %w", rev.ID, err)
	}
	totals := ix.totals
	totals.Events += chunk.Accepted
	totals.Errors -= min(chunk.Accepted, totals.Errors)
	prog.Checked += chunk.Checked
	prog.Accepted += chunk.Accepted
	prog.Failing += chunk.Failing
	prog.Resume, prog.Done = resume, resume == nil
	w.key = appendRevalidationKey(w.key[:0], rev.ID)
	w.val = appendRevalidationResult(w.val[:0], prog)
	if err := b.Set(w.key, w.val, nil); err != nil {
		return 0, false, fmt.Errorf("batch revalidation result: %w", err)
	}
	metas := []metaValue{{metaEvents, totals.Events}, {metaErrors, totals.Errors}}
	if prog.Done {
		metas = append(metas, metaValue{metaRevalidated, rev.ID})
	}
	if err := w.setMeta(b, metas...); err != nil {
		return 0, false, err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, false, fmt.Errorf("commit revalidation %d: %w", rev.ID, err)
	}
	if prog.Done {
		ix.revalidated = rev.ID
	}
	ix.totals = totals
	ix.publish()
	ix.m.revalidated.WithLabelValues("accepted").Add(float64(chunk.Accepted))
	ix.m.revalidated.WithLabelValues("failing").Add(float64(chunk.Failing))
	if prog.Done {
		ix.log.Info("revalidation done", "id", rev.ID, "at_seq", rev.AtSeq, "checked", prog.Checked,
			"accepted", prog.Accepted, "failing", prog.Failing, "last_chunk_took", time.Since(start))
	}
	return 0, true, nil
}

// revalTarget is one error record a revalidation chunk judges again.
type revalTarget struct {
	key      []byte
	seq      uint64
	conflict bool // a duplicate_id_conflict: no rule fixes it
}

// revalidationTargets collects, from lo on, the error records of rev's
// chunk: at most revalidationChunk of them, at most chunkKeys keys
// visited. resume is where the next chunk starts, nil when [lo, hi) is
// exhausted. They are collected first: the batch is not indexed, and the
// iterator reads the database as of before it.
func (ix *Index) revalidationTargets(rev *theeye.Revalidation, lo, hi []byte, empty bool) (targets []revalTarget, resume []byte, err error) {
	if empty || bytes.Compare(lo, hi) >= 0 {
		return nil, nil, nil
	}
	f := errorFilter{category: rev.Category, name: rev.Name}
	if rev.Reason != "" {
		f.mask, _ = reasonBit(rev.Reason)
	}
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, nil, fmt.Errorf("revalidation %d: new iterator: %w", rev.ID, err)
	}
	conflictBit, _ := reasonBit(theeye.ReasonDuplicateIDConflict)
	visited := 0
	for ok := it.First(); ok; ok = it.Next() {
		if len(targets) == revalidationChunk || visited == chunkKeys {
			resume = append([]byte(nil), it.Key()...)
			break
		}
		visited++
		seq := seqOfKey(it.Key())
		if seq > rev.AtSeq {
			continue // logged after the request
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, nil, fmt.Errorf("revalidation %d: read error record: %w", rev.ID, err)
		}
		h, _, err := decodeErrorValue(v)
		if err != nil {
			it.Close()
			return nil, nil, fmt.Errorf("revalidation %d: error record of seq %d: %w", rev.ID, seq, err)
		}
		if f.match(&h) {
			targets = append(targets, revalTarget{key: append([]byte(nil), it.Key()...), seq: seq, conflict: h.mask&conflictBit != 0})
		}
	}
	if err := it.Close(); err != nil {
		return nil, nil, fmt.Errorf("revalidation %d: close iterator: %w", rev.ID, err)
	}
	return targets, resume, nil
}

// revalidationProgress reads r/<id>: what request id did so far on this
// node (zero when it has not started).
func (ix *Index) revalidationProgress(id uint64) (revalidationResult, error) {
	v, closer, err := ix.db.Get(appendRevalidationKey(nil, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return revalidationResult{}, nil
	}
	if err != nil {
		return revalidationResult{}, fmt.Errorf("read revalidation %d: %w", id, err)
	}
	defer closer.Close()
	r, err := decodeRevalidationResult(v)
	if err != nil {
		return revalidationResult{}, fmt.Errorf("read revalidation %d: %w", id, err)
	}
	r.Resume = bytes.Clone(r.Resume)
	return r, nil
}

// Revalidation returns what request id has done on this node so far:
// pending when it has not started here, running, or done.
func (ix *Index) Revalidation(id uint64) (RevalidationResult, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return RevalidationResult{}, ErrClosed
	}
	r, err := ix.revalidationProgress(id)
	if err != nil {
		return RevalidationResult{}, err
	}
	out := RevalidationResult{ID: id, Status: RevalidationPending, Checked: r.Checked, Accepted: r.Accepted, Failing: r.Failing}
	switch {
	case r.Done:
		out.Status = RevalidationDone
	case r.Resume != nil || r.Checked > 0:
		out.Status = RevalidationRunning
	}
	return out, nil
}

// WaitRevalidation waits until this node has run revalidation request id
// to its end and returns what it did. It returns an error wrapping
// ctx.Err() when ctx ends first, ErrClosed when the index closes.
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
	r, err := ix.Revalidation(id)
	if err != nil {
		return RevalidationResult{}, err
	}
	if r.Status != RevalidationDone {
		return RevalidationResult{}, theeye.Errorf(theeye.ENotFound, "no revalidation %d on this node", id)
	}
	return r, nil
}
