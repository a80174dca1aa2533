package index

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
)

// EventQuery selects valid events.
type EventQuery struct {
	Session  string    // set: scan the session keyspace (ordered by timestamp, ties by seq); Category and Name are then ignored
	Category string    // set (and no Session): scan category (and Name if set)
	Name     string    // requires Category
	App      string    // filter
	From, To time.Time // on the event timestamp; zero = unbounded; From inclusive, To exclusive
	Limit    int       // 0 = no limit (streaming export)
	// MaxBytes, when positive, ends the page after the event that brings
	// the bytes passed to fn to MaxBytes or more (with a cursor when more
	// events match): a page costs what its bytes cost, whatever Limit says.
	MaxBytes int
	Cursor   string // opaque, from a previous page
	Desc     bool
}

// ErrorQuery selects events that failed validation.
type ErrorQuery struct {
	From, To time.Time // on received_at; zero = unbounded; From inclusive, To exclusive
	Reason   string    // filter: a reason code of theeye (e.g. theeye.ReasonMissingField)
	App      string    // filter
	Category string    // filter: the event's category, as far as it parsed
	Name     string    // filter: the event's name; requires Category
	Limit    int       // 0 = no limit
	MaxBytes int       // as in EventQuery
	Cursor   string    // opaque, from a previous page
	Desc     bool
}

// chunkKeys is how many keys one iterator visits before the scan closes it
// and opens a new one, so a long export does not pin memtables and sstables.
const chunkKeys = 4096

// ctxCheckKeys is how often (in keys visited) a scan checks its context.
const ctxCheckKeys = 256

// Cursor layout: base64url (no padding) of version, keyspace byte, last key
// returned. maxCursorLen bounds what is decoded.
const (
	cursorVersion byte = 1
	maxCursorLen       = 4096
)

// Events calls fn with the rendered JSON of each matching event, at most
// Limit of them; fn's slice is only valid during the call. next is the
// cursor of the following page, "" when there is no more. A malformed
// cursor, or one from another query, is a *theeye.Error with code
// theeye.EInvalidParam.
func (ix *Index) Events(ctx context.Context, q EventQuery, fn func(event []byte) error) (next string, err error) {
	if q.Limit < 0 {
		return "", theeye.Errorf(theeye.EInvalidParam, "limit %d is negative", q.Limit)
	}
	var prefix []byte
	switch {
	case q.Session != "":
		prefix = appendSessionPrefix(nil, q.Session)
	case q.Category != "" && q.Name != "":
		prefix = appendNamePrefix(nil, q.Category, q.Name)
	case q.Category != "":
		prefix = appendCategoryPrefix(nil, q.Category)
	case q.Name != "":
		return "", theeye.Errorf(theeye.EInvalidParam, "name %q needs a category", q.Name)
	default:
		prefix = []byte{ksTime}
	}
	sc := scan{ks: prefix[0], desc: q.Desc, limit: q.Limit, maxBytes: q.MaxBytes, cursor: q.Cursor}
	sc.lower, sc.upper, sc.empty = timeRange(prefix, q.From, q.To)
	app := q.App
	sc.keep = func(_, v []byte) bool {
		if app == "" {
			return true
		}
		a, _, err := decodeAppValue(v)
		return err != nil || string(a) == app // emit reports a malformed value
	}
	var bodies bodyReader
	category := []byte(q.Category)
	sc.emit = func(k, v []byte) (int, error) {
		_, rest, err := decodeAppValue(v)
		if err != nil {
			return 0, fmt.Errorf("value of seq %d: %w", seqOfKey(k), err)
		}
		switch k[0] {
		case ksName: // the body is under the query's category
			rest, err = bodies.get(ix.db, category, k)
		case ksTime: // rest is the category the body is under
			rest, err = bodies.get(ix.db, rest, k)
		}
		if err != nil {
			return 0, err
		}
		return len(rest), fn(rest)
	}
	sc.chunkDone = bodies.close
	next, err = ix.scan(ctx, &sc)
	if err != nil {
		return "", fmt.Errorf("events query: %w", err)
	}
	return next, nil
}

// Errors calls fn with the record of each matching failed event, ordered
// by received_at, at most Limit of them; fn's slice is only valid during the
// call. Cursors work as in Events.
func (ix *Index) Errors(ctx context.Context, q ErrorQuery, fn func(record []byte) error) (next string, err error) {
	if q.Limit < 0 {
		return "", theeye.Errorf(theeye.EInvalidParam, "limit %d is negative", q.Limit)
	}
	var mask uint64
	if q.Reason != "" {
		bit, ok := reasonBit(q.Reason)
		if !ok {
			return "", theeye.Errorf(theeye.EInvalidParam, "unknown reason %q", q.Reason)
		}
		mask = bit
	}
	if q.Name != "" && q.Category == "" {
		return "", theeye.Errorf(theeye.EInvalidParam, "name %q needs a category", q.Name)
	}
	sc := scan{ks: ksError, desc: q.Desc, limit: q.Limit, maxBytes: q.MaxBytes, cursor: q.Cursor}
	sc.lower, sc.upper, sc.empty = timeRange([]byte{ksError}, q.From, q.To)
	f := errorFilter{mask: mask, app: q.App, category: q.Category, name: q.Name}
	sc.keep = func(_, v []byte) bool {
		h, _, err := decodeErrorValue(v)
		if err != nil {
			return true // emit reports it
		}
		return f.match(&h)
	}
	sc.emit = func(k, v []byte) (int, error) {
		_, rec, err := decodeErrorValue(v)
		if err != nil {
			return 0, fmt.Errorf("error record of seq %d: %w", seqOfKey(k), err)
		}
		return len(rec), fn(rec)
	}
	next, err = ix.scan(ctx, &sc)
	if err != nil {
		return "", fmt.Errorf("errors query: %w", err)
	}
	return next, nil
}

// errorFilter is what an errors query or a revalidation selects, besides
// the received_at range.
type errorFilter struct {
	mask                uint64 // 0: any reason
	app, category, name string // "": any
}

func (f *errorFilter) match(h *errorHeader) bool {
	return (f.mask == 0 || h.mask&f.mask != 0) &&
		(f.app == "" || string(h.app) == f.app) &&
		(f.category == "" || string(h.category) == f.category) &&
		(f.name == "" || string(h.name) == f.name)
}

// ErrorSummary counts the failed events received in a time range, for a
// monitoring view.
type ErrorSummary struct {
	Total    uint64            `json:"total"`
	ByReason map[string]uint64 `json:"by_reason"` // an event counts once per distinct reason code
	ByType   []TypeCount       `json:"by_type"`   // ordered by count, then category and name
}

// TypeCount is the number of failed events of one event type.
type TypeCount struct {
	Category string `json:"category"`
	Name     string `json:"name"`
	Count    uint64 `json:"count"`
}

// ErrorsSummary counts the failed events with received_at in [from, to)
// (zero: unbounded) by reason and by event type, reading only the headers
// of the error records.
func (ix *Index) ErrorsSummary(ctx context.Context, from, to time.Time) (ErrorSummary, error) {
	sum := ErrorSummary{ByReason: map[string]uint64{}, ByType: []TypeCount{}}
	byType := map[[2]string]uint64{}
	sc := scan{ks: ksError}
	sc.lower, sc.upper, sc.empty = timeRange([]byte{ksError}, from, to)
	var bad error
	sc.keep = func(k, v []byte) bool {
		h, _, err := decodeErrorValue(v)
		if err != nil {
			if bad == nil {
				bad = fmt.Errorf("error record of seq %d: %w", seqOfKey(k), err)
			}
			return false
		}
		sum.Total++
		for i, c := range reasonCodes {
			if h.mask&(1<<i) != 0 {
				sum.ByReason[c]++
			}
		}
		if h.mask&(1<<otherReasonBit) != 0 {
			sum.ByReason["other"]++
		}
		byType[[2]string{string(h.category), string(h.name)}]++
		return false
	}
	sc.emit = func(_, _ []byte) (int, error) { return 0, nil }
	if _, err := ix.scan(ctx, &sc); err != nil {
		return ErrorSummary{}, fmt.Errorf("errors summary: %w", err)
	}
	if bad != nil {
		return ErrorSummary{}, fmt.Errorf("errors summary: %w", bad)
	}
	for t, n := range byType {
		sum.ByType = append(sum.ByType, TypeCount{Category: t[0], Name: t[1], Count: n})
	}
	slices.SortFunc(sum.ByType, func(a, b TypeCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a.Category, b.Category); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return sum, nil
}

// scan is one bounded range scan over a time-ordered keyspace.
type scan struct {
	ks           byte
	lower, upper []byte // the query's bounds, before the cursor
	empty        bool   // the time range holds nothing
	desc         bool
	limit        int
	maxBytes     int // 0: no byte bound
	cursor       string

	keep      func(k, v []byte) bool         // filters; must not keep k or v
	emit      func(k, v []byte) (int, error) // renders a kept key; returns the bytes it passed on
	chunkDone func() error                   // optional, at the end of each chunk, under the read lock
}

// scan runs sc in chunks of at most chunkKeys keys, each with an iterator of
// its own bounded by the query and the position reached.
func (ix *Index) scan(ctx context.Context, sc *scan) (string, error) {
	lo, hi := sc.lower, sc.upper
	if sc.cursor != "" {
		ks, key, err := decodeCursor(sc.cursor)
		if err != nil {
			return "", err
		}
		if ks != sc.ks || sc.empty || bytes.Compare(key, sc.lower) < 0 || bytes.Compare(key, sc.upper) >= 0 {
			return "", theeye.Errorf(theeye.EInvalidParam, "cursor is not from this query")
		}
		if sc.desc {
			hi = key
		} else {
			lo = append(key, 0) // the smallest key after it
		}
	}
	if sc.empty {
		return "", nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	// Events below the retention cut are gone from every query at once,
	// before the purge deletes their keys.
	if retain := ix.retainFrom(); retain > 1 {
		keep := sc.keep
		sc.keep = func(k, v []byte) bool { return seqOfKey(k) >= retain && keep(k, v) }
	}

	var last []byte // last key returned
	returned, bytesOut := 0, 0
	for {
		var resume []byte
		more := false // a further match exists past the limit
		err := ix.withIter(lo, hi, sc.chunkDone, func(it *pebble.Iterator) error {
			var ok bool
			if sc.desc {
				ok = it.SeekLT(hi)
			} else {
				ok = it.SeekGE(lo)
			}
			for visited := 1; ok; visited++ {
				k := it.Key()
				v, err := it.ValueAndErr()
				if err != nil {
					return fmt.Errorf("read value: %w", err)
				}
				if sc.keep(k, v) {
					if sc.limit > 0 && returned == sc.limit || sc.maxBytes > 0 && bytesOut >= sc.maxBytes {
						more = true
						return nil
					}
					n, err := sc.emit(k, v)
					if err != nil {
						return err
					}
					returned++
					bytesOut += n
					last = append(last[:0], k...)
				}
				if visited%ctxCheckKeys == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				if visited == chunkKeys {
					resume = append([]byte(nil), k...)
					return nil
				}
				if sc.desc {
					ok = it.Prev()
				} else {
					ok = it.Next()
				}
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		if more {
			return encodeCursor(sc.ks, last), nil
		}
		if resume == nil {
			return "", nil
		}
		if sc.desc {
			hi = resume
		} else {
			lo = append(resume, 0)
		}
	}
}

// withIter opens an iterator bounded by [lo, hi), passes it to fn, closes
// it and calls done (when not nil), all under the read lock that keeps
// Close away.
func (ix *Index) withIter(lo, hi []byte, done func() error, fn func(it *pebble.Iterator) error) (err error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	if done != nil {
		defer func() {
			if derr := done(); derr != nil && err == nil {
				err = derr
			}
		}()
	}
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("new iterator: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close iterator: %w", cerr)
		}
	}()
	if err := fn(it); err != nil {
		return err
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("iterate: %w", err)
	}
	return nil
}

// bodyReader reads the bodies that the n and t pointers of a scan name,
// with one iterator over the category keyspace per chunk, opened at the
// first read. SeekPrefixGE consults the bloom filters as a DB.Get does, but
// without Get's allocation (BenchmarkBodyLookup). A scan visits pointers in
// time order, and so the bodies of one category in time order.
type bodyReader struct {
	it  *pebble.Iterator
	key []byte
}

// get returns the body of the event that pointer key ptr names under
// category, valid until the next get or close.
func (r *bodyReader) get(db *pebble.DB, category, ptr []byte) ([]byte, error) {
	r.key = appendBodyKey(r.key[:0], category, ptr)
	body, ok, err := r.read(db, seqOfKey(ptr))
	if err == nil && !ok {
		err = fmt.Errorf("event %d: index pointer without body", seqOfKey(ptr))
	}
	return body, err
}

// read returns the body stored under the c key in r.key, of the event at
// seq, and whether there is one; valid until the next read or close.
func (r *bodyReader) read(db *pebble.DB, seq uint64) ([]byte, bool, error) {
	if err := r.open(db); err != nil {
		return nil, false, err
	}
	if !r.it.SeekPrefixGE(r.key) || !bytes.Equal(r.it.Key(), r.key) {
		if err := r.it.Error(); err != nil {
			return nil, false, fmt.Errorf("read event %d: %w", seq, err)
		}
		return nil, false, nil
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return nil, false, fmt.Errorf("read event %d: %w", seq, err)
	}
	_, body, err := decodeAppValue(v)
	if err != nil {
		return nil, false, fmt.Errorf("body of seq %d: %w", seq, err)
	}
	return body, true, nil
}

// open opens the iterator over the category keyspace, if none is open.
func (r *bodyReader) open(db *pebble.DB) error {
	if r.it != nil {
		return nil
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{ksCat}, UpperBound: []byte{ksCat + 1}})
	if err != nil {
		return fmt.Errorf("new body iterator: %w", err)
	}
	r.it = it
	return nil
}

// close closes the iterator, if one is open.
func (r *bodyReader) close() error {
	if r.it == nil {
		return nil
	}
	err := r.it.Close()
	r.it = nil
	if err != nil {
		return fmt.Errorf("close body iterator: %w", err)
	}
	return nil
}

// encodeCursor returns the opaque cursor for position key in keyspace ks.
func encodeCursor(ks byte, key []byte) string {
	b := make([]byte, 0, 2+len(key))
	b = append(b, cursorVersion, ks)
	b = append(b, key...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor is the twin of encodeCursor: it accepts only what
// encodeCursor can produce for a well-formed key.
func decodeCursor(s string) (ks byte, key []byte, err error) {
	bad := func(why string) (byte, []byte, error) {
		return 0, nil, theeye.Errorf(theeye.EInvalidParam, "malformed cursor: %s", why)
	}
	if len(s) > maxCursorLen {
		return bad("too long")
	}
	for i := 0; i < len(s); i++ {
		// The decoder skips \r and \n; a cursor has none.
		if c := s[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return bad("not base64url")
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return bad("not base64url")
	}
	if len(b) < 3 {
		return bad("too short")
	}
	if b[0] != cursorVersion {
		return bad("unknown version")
	}
	ks, key = b[1], b[2:]
	if key[0] != ks {
		return bad("keyspace mismatch")
	}
	if err := validTimeKey(ks, key); err != nil {
		return bad(err.Error())
	}
	return ks, key, nil
}
