package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
)

// Erasure of a session (API.md, "Data lifecycle"): the index's part. The
// node's eraser (raftnode) drives a deletion through its stages, and the
// index keeps the deletion's progress (z/<id>) in its own database, so a
// restart resumes it: EraseSessionKeys deletes, chunk by chunk, every key
// of the session's events logged at or before the deletion (their bodies
// and pointers, their error records, their dedupe keys) and records their
// seqs, which the eraser then tombstones in log/; CompactErased then
// rewrites the sstables that held those keys, so no file of the index keeps
// their bytes (the index writes no WAL: pebbleOptions).

// eraseChunk bounds the events one EraseSessionKeys call deletes.
const eraseChunk = 1024

// Erasure is what a deletion has done on this node.
type Erasure struct {
	ID     uint64      `json:"id"`
	Stage  int         `json:"stage"`
	Seqs   []uint64    `json:"seqs"`   // the events erased (sorted)
	Ranges [][2][]byte `json:"ranges"` // key ranges the deleted keys lie in, one per keyspace
	DoneAt time.Time   `json:"done_at,omitzero"`
}

// Erasure returns the progress of deletion id on this node (stage
// theeye.EraseKeys and no seqs when it has not started).
func (ix *Index) Erasure(id uint64) (Erasure, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return Erasure{}, ErrClosed
	}
	return ix.erasure(id)
}

func (ix *Index) erasure(id uint64) (Erasure, error) {
	v, closer, err := ix.db.Get(appendErasureKey(nil, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return Erasure{ID: id}, nil
	}
	if err != nil {
		return Erasure{}, fmt.Errorf("read erasure %d: %w", id, err)
	}
	defer closer.Close()
	var e Erasure
	if err := json.Unmarshal(v, &e); err != nil {
		return Erasure{}, fmt.Errorf("read erasure %d: %w: %w", id, errBadValue, err)
	}
	return e, nil
}

// SetErasureStage records that deletion id reached stage (theeye.EraseDone sets
// its DoneAt to now).
func (ix *Index) SetErasureStage(id uint64, stage int) error {
	if err := ix.lockWriter(); err != nil {
		return err
	}
	defer ix.unlockWriter()
	e, err := ix.erasure(id)
	if err != nil {
		return err
	}
	e.Stage = stage
	if stage == theeye.EraseDone {
		e.DoneAt = time.Now().UTC()
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode erasure %d: %w", id, err)
	}
	if err := ix.durable(func(b *pebble.Batch) error { return b.Set(appendErasureKey(nil, id), v, nil) }); err != nil {
		return fmt.Errorf("record erasure %d: %w", id, err)
	}
	return nil
}

// EraseSessionKeys deletes, in one batch, the keys of up to eraseChunk
// events of session logged at or before atSeq (its later events stay), and
// records their seqs in the deletion's progress, in the same batch. It
// reports done once none is left; the caller calls it until then. The
// index must have indexed atSeq (it refuses otherwise): what it has not
// indexed it cannot find.
func (ix *Index) EraseSessionKeys(id uint64, session string, atSeq uint64) (done bool, err error) {
	if err := ix.lockWriter(); err != nil {
		return false, err
	}
	defer ix.unlockWriter()
	if ix.cursor < atSeq {
		return false, fmt.Errorf("erasure %d: the index is at seq %d, the deletion at %d: %w", id, ix.cursor, atSeq, ErrNotIndexed)
	}
	e, err := ix.erasure(id)
	if err != nil {
		return false, err
	}
	if e.Stage > theeye.EraseKeys {
		return true, nil
	}
	b := ix.db.NewBatch()
	defer b.Close()
	ix.state.rollup.reset() // eraseValid takes the erased events from the counts
	r := newRanges(e.Ranges)
	var errs uint64
	n, err := ix.eraseValid(b, session, atSeq, &e, r)
	events := uint64(n)
	if err == nil && n < eraseChunk {
		var m int
		m, err = ix.eraseFailed(b, session, atSeq, &e, r, eraseChunk-n, &errs)
		n += m
	}
	if err != nil {
		return false, fmt.Errorf("erasure %d: %w", id, err)
	}
	if err := ix.applyRollup(b); err != nil {
		return false, fmt.Errorf("erasure %d: %w", id, err)
	}
	done = n < eraseChunk
	slices.Sort(e.Seqs)
	e.Seqs = slices.Compact(e.Seqs)
	e.Ranges = r.list()
	if done {
		e.Stage = theeye.EraseLog
	}
	v, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("encode erasure %d: %w", id, err)
	}
	if err := b.Set(appendErasureKey(nil, id), v, nil); err != nil {
		return false, fmt.Errorf("batch erasure %d: %w", id, err)
	}
	totals := ix.totals
	totals.Events -= min(events, totals.Events)
	totals.Errors -= min(errs, totals.Errors)
	if err := ix.state.setMeta(b, metaValue{metaEvents, totals.Events}, metaValue{metaErrors, totals.Errors}); err != nil {
		return false, err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return false, fmt.Errorf("commit erasure %d: %w", id, err)
	}
	// The last chunk ends the index stage: the keys must be gone from
	// disk before log/ rewrites the segments (no WAL, see durable).
	if done {
		if err := ix.db.Flush(); err != nil {
			return false, fmt.Errorf("flush erasure %d: %w", id, err)
		}
	}
	ix.totals = totals
	ix.publish()
	return done, nil
}

// ErrNotIndexed is returned by EraseSessionKeys while the index is behind
// the deletion.
var ErrNotIndexed = errors.New("not indexed yet")

// eraseValid deletes the keys of up to eraseChunk valid events of session
// with seq <= atSeq: the session copy, the category copy, the n and t
// pointers, the dedupe key. The bodies say where the other keys are. It
// returns how many it erased.
func (ix *Index) eraseValid(b *pebble.Batch, session string, atSeq uint64, e *Erasure, r *keyRanges) (int, error) {
	return ix.eachUpTo(appendSessionPrefix(nil, session), atSeq, eraseChunk, func(k, v []byte, seq uint64) error {
		app, body, err := decodeAppValue(v)
		if err != nil {
			return fmt.Errorf("value of seq %d: %w", seq, err)
		}
		var ev struct {
			ID       string `json:"id"`
			Category string `json:"category"`
			Name     string `json:"name"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			return fmt.Errorf("body of seq %d: %w", seq, err)
		}
		ns, _, _ := decodeTimestamp(k[len(k)-tsSeqLen:]) // the timestamp the keys were made with
		if err := ix.state.deleteValidKeys(b, session, ev.Category, ev.Name, ns, seq, r.add); err != nil {
			return err
		}
		if ev.ID != "" {
			dk := appendDedupeKey(nil, string(app), ev.ID)
			ok, err := ix.dedupeNames(dk, seq)
			if err != nil {
				return err
			}
			if ok {
				if err := b.Delete(dk, nil); err != nil {
					return fmt.Errorf("batch delete: %w", err)
				}
				r.add(dk)
			}
		}
		ix.state.rollup.add(ns, ev.Category, ev.Name, -1)
		e.Seqs = append(e.Seqs, seq)
		return nil
	})
}

// eraseFailed deletes the error records of up to max failed events of
// session with seq <= atSeq, found through f/<session>/, with their f keys
// and dedupe keys.
func (ix *Index) eraseFailed(b *pebble.Batch, session string, atSeq uint64, e *Erasure, r *keyRanges, max int, count *uint64) (int, error) {
	return ix.eachUpTo(appendFailedPrefix(nil, session), atSeq, max, func(k, v []byte, seq uint64) error {
		if len(v) != 8 {
			return fmt.Errorf("failed event %d of the session: %w", seq, errBadValue)
		}
		xk := appendErrorKey(nil, int64(binary.BigEndian.Uint64(v)), seq)
		keys := [][]byte{bytes.Clone(k), xk}
		if rec, closer, err := ix.db.Get(xk); err == nil {
			h, body, derr := decodeErrorValue(rec)
			var ev struct {
				Event struct {
					ID string `json:"id"`
				} `json:"event"`
			}
			if derr == nil && json.Unmarshal(body, &ev) == nil && ev.Event.ID != "" {
				dk := appendDedupeKey(nil, string(h.app), ev.Event.ID)
				if ok, err := ix.dedupeNames(dk, seq); err == nil && ok {
					keys = append(keys, dk)
				}
			}
			closer.Close()
			*count++
		}
		for _, dk := range keys {
			if err := b.Delete(dk, nil); err != nil {
				return fmt.Errorf("batch delete: %w", err)
			}
			r.add(dk)
		}
		e.Seqs = append(e.Seqs, seq)
		return nil
	})
}

// eachUpTo calls fn in key order with each key under prefix whose seq
// (its last 8 bytes) is at most atSeq, and its value, for up to max of
// them, and returns how many it passed to fn.
func (ix *Index) eachUpTo(prefix []byte, atSeq uint64, max int, fn func(k, v []byte, seq uint64) error) (int, error) {
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixSuccessor(prefix)})
	if err != nil {
		return 0, fmt.Errorf("new iterator: %w", err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok && n < max; ok = it.Next() {
		k := it.Key()
		seq := seqOfKey(k)
		if seq > atSeq {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return n, fmt.Errorf("read seq %d: %w", seq, err)
		}
		if err := fn(k, v, seq); err != nil {
			return n, err
		}
		n++
	}
	return n, it.Error()
}

// dedupeNames reports whether dedupe key k names seq.
func (ix *Index) dedupeNames(k []byte, seq uint64) (bool, error) {
	v, closer, err := ix.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read dedupe key: %w", err)
	}
	defer closer.Close()
	s, _, err := decodeDedupeValue(v)
	return err == nil && s == seq, nil
}

// ErasureState returns the stage deletion id reached on this node and the
// seqs of the events it erases (raftnode.ErasureIndex).
func (ix *Index) ErasureState(id uint64) (stage int, seqs []uint64, err error) {
	e, err := ix.Erasure(id)
	return e.Stage, e.Seqs, err
}

// ErasureDoneAt returns when deletion id was done on this node (zero when
// it is not).
func (ix *Index) ErasureDoneAt(id uint64) (time.Time, error) {
	e, err := ix.Erasure(id)
	return e.DoneAt, err
}

// CompactErased rewrites the sstables that held deletion id's keys down to
// the bottom level, so the deleted values and their tombstones are gone
// from every file. There is no WAL to turn over: the index has none
// (pebbleOptions), and EraseSessionKeys flushed the last chunk.
func (ix *Index) CompactErased(ctx context.Context, id uint64) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	e, err := ix.erasure(id)
	if err != nil {
		return err
	}
	for _, r := range e.Ranges {
		if err := ix.db.Compact(ctx, r[0], append(bytes.Clone(r[1]), 0), false); err != nil {
			return fmt.Errorf("compact erased keys: %w", err)
		}
	}
	return nil
}

// keyRanges keeps, per keyspace byte, the smallest and largest key seen.
type keyRanges struct{ m map[byte][2][]byte }

func newRanges(in [][2][]byte) *keyRanges {
	r := &keyRanges{m: map[byte][2][]byte{}}
	for _, kr := range in {
		r.add(kr[0])
		r.add(kr[1])
	}
	return r
}

func (r *keyRanges) add(k []byte) {
	cur, ok := r.m[k[0]]
	if !ok {
		r.m[k[0]] = [2][]byte{bytes.Clone(k), bytes.Clone(k)}
		return
	}
	if bytes.Compare(k, cur[0]) < 0 {
		cur[0] = bytes.Clone(k)
	}
	if bytes.Compare(k, cur[1]) > 0 {
		cur[1] = bytes.Clone(k)
	}
	r.m[k[0]] = cur
}

func (r *keyRanges) list() [][2][]byte {
	out := make([][2][]byte, 0, len(r.m))
	for _, kr := range r.m {
		out = append(out, kr)
	}
	slices.SortFunc(out, func(a, b [2][]byte) int { return bytes.Compare(a[0], b[0]) })
	return out
}
