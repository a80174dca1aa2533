package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
)

// What happened to an event a client sent with its own id (GET
// /v1/events/{id}/status). DESIGN.md ("Event status") gives the decision
// behind each answer.
const (
	// StatusPending: acknowledged, in this node's log, not indexed yet.
	StatusPending = "pending"
	// StatusIndexed: valid and indexed; every query of this node sees it.
	StatusIndexed = "indexed"
	// StatusFailed: stored, failed validation; Reasons say why.
	StatusFailed = "failed"
	// StatusDuplicate: the copy asked about (by its seq) is a byte-identical
	// retry of the event that owns the id, and was not indexed again.
	StatusDuplicate = "duplicate"
)

// StatusScanLimit is how many log events past the index cursor EventStatus
// reads, newest first, to find an id not indexed yet. Flow control keeps
// the indexer within seconds of the log, far fewer events than this.
const StatusScanLimit = 100_000

// EventStatus is where one event sent with a client id stands on this
// node.
type EventStatus struct {
	ID, App string
	Seq     uint64 // the event the status is of
	Status  string // StatusPending, StatusIndexed, StatusFailed or StatusDuplicate
	Reasons []theeye.Reason
	// DuplicateOf is, for StatusDuplicate, the seq of the event that owns
	// the id (0 when the index no longer knows it).
	DuplicateOf uint64
}

// EventStatus returns the status of the event app sent with the client id
// id. With seq 0 it is the status of the id's owner: the first event of
// app logged with that id (later copies are the same event when they are
// byte-identical, and a duplicate_id_conflict failure of their own when
// not). With seq > 0 it is the status of the copy logged at seq, which must
// be an event of app with that id. A *theeye.Error with code ENotFound when
// this node holds no such event (never sent, erased, or past the retention
// cut); EUnavailable when the indexer is more than StatusScanLimit events
// behind and the newest of them do not hold the id.
func (ix *Index) EventStatus(ctx context.Context, app, id string, seq uint64) (EventStatus, error) {
	return ix.eventStatus(ctx, app, id, seq, StatusScanLimit)
}

// eventStatus is EventStatus reading at most scanLimit events past the
// cursor.
func (ix *Index) eventStatus(ctx context.Context, app, id string, seq uint64, scanLimit uint64) (EventStatus, error) {
	src := ix.cfg.Source
	if src == nil {
		return EventStatus{}, errors.New("event status: Config.Source is nil")
	}
	if id == "" {
		return EventStatus{}, theeye.Errorf(theeye.EInvalidParam, "the id is empty")
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return EventStatus{}, ErrClosed
	}
	// The cursor first: every event up to it has its keys in Pebble, and
	// every later one is in the log past it.
	indexed := ix.IndexedSeq()
	owner, err := ix.owner(app, id)
	if err != nil {
		return EventStatus{}, err
	}
	st := EventStatus{ID: id, App: app, Reasons: []theeye.Reason{}}
	switch {
	case seq > 0:
		st.Seq = seq
		return st, ix.classify(&st, owner)
	case owner > 0:
		st.Seq = owner
		return st, ix.classify(&st, owner)
	}
	// Not indexed (yet): look for it in the log past the cursor.
	last := src.LastSeq()
	lo, capped := indexed+1, false
	if last >= lo && last-lo+1 > scanLimit {
		lo, capped = last-scanLimit+1, true
	}
	if last >= lo {
		found, err := ix.findPending(ctx, app, id, lo, last)
		if err != nil {
			return EventStatus{}, err
		}
		if found > 0 {
			st.Seq, st.Status = found, StatusPending
			return st, nil
		}
	}
	if capped {
		return EventStatus{}, theeye.Errorf(theeye.EUnavailable,
			"this node has %d events not indexed yet; the newest %d do not hold id %q of app %q; retry once it has caught up",
			last-indexed, scanLimit, id, app).WithDetail("indexed_seq", indexed)
	}
	return EventStatus{}, theeye.Errorf(theeye.ENotFound, "this node holds no event of app %q with id %q", app, id)
}

// owner returns the seq the dedupe key of (app, id) names, 0 when there is
// none. The caller holds mu for reading.
func (ix *Index) owner(app, id string) (uint64, error) {
	v, closer, err := ix.db.Get(appendDedupeKey(nil, app, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read dedupe key: %w", err)
	}
	defer closer.Close()
	seq, _, err := decodeDedupeValue(v)
	if err != nil {
		return 0, fmt.Errorf("dedupe value of %q: %w", id, err)
	}
	return seq, nil
}

// classify fills st.Status (and Reasons, DuplicateOf) for the event at
// st.Seq, which must be of st.App with id st.ID: pending past the cursor;
// failed when it has an error record; indexed when it has its body; else a
// duplicate that the indexer dropped. The caller holds mu for reading.
func (ix *Index) classify(st *EventStatus, owner uint64) error {
	// Read now: every event up to it has its keys in Pebble.
	indexed := ix.IndexedSeq()
	if st.Seq < ix.retainFrom() {
		return theeye.Errorf(theeye.ENotFound, "the event of app %q with id %q (seq %d) is past the retention cut", st.App, st.ID, st.Seq)
	}
	found := false
	var cerr error
	_, err := ix.cfg.Source.ReadFrom(st.Seq, 1, func(seq uint64, env *theeye.Envelope) error {
		if seq != st.Seq {
			return nil
		}
		if len(env.Raw) == 0 || env.App != st.App {
			return nil // erased, or another app's event
		}
		ev, _ := theeye.ParseValidEvent(env.Raw, env.ReceivedTime(), theeye.DefaultPolicy())
		if ev.ID != st.ID {
			return nil
		}
		found = true
		if seq > indexed {
			st.Status = StatusPending
			return nil
		}
		cerr = ix.judged(st, owner, env, &ev)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read seq %d: %w", st.Seq, err)
	}
	if !found {
		return theeye.Errorf(theeye.ENotFound, "this node holds no event of app %q with id %q at seq %d", st.App, st.ID, st.Seq)
	}
	return cerr
}

// judged classifies an indexed event from its keys.
func (ix *Index) judged(st *EventStatus, owner uint64, env *theeye.Envelope, ev *theeye.Event) error {
	v, closer, err := ix.db.Get(appendErrorKey(nil, env.ReceivedAt, st.Seq))
	switch {
	case err == nil:
		defer closer.Close()
		_, rec, err := decodeErrorValue(v)
		if err != nil {
			return fmt.Errorf("error record of seq %d: %w", st.Seq, err)
		}
		var r struct {
			Reasons []theeye.Reason `json:"reasons"`
		}
		if err := json.Unmarshal(rec, &r); err != nil {
			return fmt.Errorf("error record of seq %d: %w", st.Seq, err)
		}
		st.Status, st.Reasons = StatusFailed, r.Reasons
		return nil
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("read error record: %w", err)
	}
	if !ev.Timestamp.IsZero() {
		has, err := ix.has(appendCategoryKey(nil, ev.Category, ev.Timestamp.UnixNano(), st.Seq))
		if err != nil {
			return err
		}
		if has {
			st.Status = StatusIndexed
			return nil
		}
	}
	if owner == st.Seq {
		// The owner of an id always has its body or its error record.
		return fmt.Errorf("seq %d owns id %q but has neither a body nor an error record", st.Seq, st.ID)
	}
	st.Status = StatusDuplicate
	if owner > 0 && owner < st.Seq {
		st.DuplicateOf = owner
	}
	return nil
}

// findPending returns the first seq in [lo, hi] that holds an event of app
// with id id, 0 when none does. Events whose bytes cannot spell the id
// (they hold neither it nor a JSON escape) are not parsed.
func (ix *Index) findPending(ctx context.Context, app, id string, lo, hi uint64) (uint64, error) {
	idb := []byte(id)
	found, visited := uint64(0), 0
	errFound := errors.New("found")
	_, err := ix.cfg.Source.ReadFrom(lo, int(hi-lo+1), func(seq uint64, env *theeye.Envelope) error {
		if visited++; visited%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if env.App != app || !bytes.Contains(env.Raw, idb) && bytes.IndexByte(env.Raw, '\\') < 0 {
			return nil
		}
		if ev, _ := theeye.ParseValidEvent(env.Raw, env.ReceivedTime(), theeye.DefaultPolicy()); ev.ID == id {
			found = seq
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return 0, fmt.Errorf("search the log from seq %d: %w", lo, err)
	}
	return found, nil
}
