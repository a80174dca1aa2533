package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
)

// Event counts (API.md, "For analysts": GET /v1/stats). The indexer keeps,
// in the u keyspace, the number of valid events by interval (1m, 1h, 1d),
// bucket start (UTC, aligned to the interval) and event type, counted by
// the event's timestamp. Every write that makes an event valid or takes
// one away changes the counts in the same Pebble batch as its keys and
// the cursor:
//
//   - indexEvents and revalidateChunk: writeEvent adds one (a new valid
//     event, or a failure that now passes);
//   - purgeBatch (retention): an expired valid event takes one away, in the
//     batch that deletes its keys and moves m "purged";
//   - EraseSessionKeys: each erased valid event takes one away, in the
//     batch that deletes its keys and records z/<id>.
//
// So the counts are exact at every committed batch, survive a crash with
// the cursor (a batch commits whole or not at all), and, since every node
// and every rebuild indexes the same log to the same verdicts, are the same
// on every node at the same indexed seq. A count that comes to zero is
// deleted.
//
// A batch first sums its changes in memory by minute bucket and type
// (rollupDelta), then derives the hour and day changes from those, and
// writes each distinct key once: read the committed count (Get), add,
// Set (read-modify-write; the indexer is the only writer, under writeMu).
// A Pebble merge operator would spare the reads, at the price of merges on
// every read until compactions fold them, and of a Merger whose name
// Pebble checks at Open (a store of an older layout could not even be
// opened to be rebuilt). Measured in DESIGN.md ("Rollup").
//
// Retention: event queries hide the events below the cut (a seq) at once;
// counts by timestamp cannot tell those seqs apart, so stats lose an
// expired event when this node's purge deletes its keys, a few indexer
// rounds after the cut (purge.go takes turns with new events). Until then
// a bucket still counts it. Buckets wholly emptied by retention answer 0.

// rollupInterval is one width of bucket the indexer keeps counts for.
type rollupInterval struct {
	code byte          // in the key; persisted
	secs int64         // bucket width
	name string        // as the API names it
	d    time.Duration // as Go does
}

// rollupIntervals are the widths, finest first (the derivation of hours
// and days from minutes relies on it).
var rollupIntervals = [...]rollupInterval{
	{'m', 60, "1m", time.Minute},
	{'h', 3600, "1h", time.Hour},
	{'d', 86400, "1d", 24 * time.Hour},
}

// MaxStatsBuckets bounds the buckets one stats answer holds (every bucket
// of the range, empty ones included).
const MaxStatsBuckets = 10_000

// MaxStatsCounts bounds the per-type counts one stats answer holds (about
// 60 bytes of JSON each): many types over many buckets must be narrowed.
const MaxStatsCounts = 200_000

// StatsInterval returns the bucket width an API interval name ("1m", "1h",
// "1d") stands for.
func StatsInterval(name string) (time.Duration, bool) {
	for _, iv := range rollupIntervals {
		if iv.name == name {
			return iv.d, true
		}
	}
	return 0, false
}

func intervalOf(d time.Duration) (rollupInterval, bool) {
	for _, iv := range rollupIntervals {
		if iv.d == d {
			return iv, true
		}
	}
	return rollupInterval{}, false
}

// floorDiv is a/b rounded towards minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// rollupDelta is what the batch in hand adds to the counts (negative: takes
// away), by minute bucket and event type. It is part of batchState,
// guarded by writeMu.
type rollupDelta struct {
	idx  map[string]int // secs(minute start) str(category) str(name) -> index in keys and n
	keys []string
	n    []int64
	key  []byte
	// flush's buffers: every interval's key, then summed per key.
	arena []byte
	ents  []rollupEntry
}

type rollupEntry struct {
	k0, k1 int // arena[k0:k1]
	n      int64
}

func (d *rollupDelta) reset() {
	clear(d.idx)
	d.keys, d.n = d.keys[:0], d.n[:0]
}

// add counts n events (n < 0: takes them away) of type (category, name)
// with timestamp ns.
func (d *rollupDelta) add(ns int64, category, name string, n int64) {
	if d.idx == nil {
		d.idx = make(map[string]int)
	}
	d.key = appendTimestamp(d.key[:0], floorDiv(ns, 60*int64(time.Second))*60)
	d.key = appendString(appendString(d.key, category), name)
	if i, ok := d.idx[string(d.key)]; ok {
		d.n[i] += n
		return
	}
	k := string(d.key) // one copy, for the map and the list
	d.idx[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.n = append(d.n, n)
}

// sum expands the minute changes to every interval and returns, in key
// order, each distinct u key once with its summed change (none at zero).
// The entries name keys in d.arena, valid until the next sum.
func (d *rollupDelta) sum() []rollupEntry {
	d.arena, d.ents = d.arena[:0], d.ents[:0]
	for i, k := range d.keys {
		if d.n[i] == 0 {
			continue
		}
		minute, _, _ := decodeTimestamp([]byte(k[:8])) // the minute's start, as add wrote it
		for _, iv := range rollupIntervals {
			k0 := len(d.arena)
			d.arena = appendRollupBucket(d.arena, iv.code, floorDiv(minute, iv.secs)*iv.secs)
			d.arena = append(d.arena, k[8:]...)
			d.ents = append(d.ents, rollupEntry{k0, len(d.arena), d.n[i]})
		}
	}
	a := d.arena
	slices.SortFunc(d.ents, func(x, y rollupEntry) int { return bytes.Compare(a[x.k0:x.k1], a[y.k0:y.k1]) })
	out := d.ents[:0]
	for i := 0; i < len(d.ents); {
		e := d.ents[i]
		for i++; i < len(d.ents) && bytes.Equal(a[d.ents[i].k0:d.ents[i].k1], a[e.k0:e.k1]); i++ {
			e.n += d.ents[i].n
		}
		if e.n != 0 {
			out = append(out, e)
		}
	}
	d.ents = out
	return out
}

// applyRollup writes the batch's changes to the counts into b: each
// distinct key of every interval once, its committed count read, changed
// and set (deleted at zero), in key order. The caller holds writeMu, so
// nothing else writes u keys between the read and the commit; b is not
// indexed, and each key is written once, so the read sees the count as
// committed.
func (ix *Index) applyRollup(b *pebble.Batch) error {
	d := &ix.state.rollup
	if len(d.keys) == 0 {
		return nil
	}
	var val [8]byte
	for _, e := range d.sum() {
		k := d.arena[e.k0:e.k1]
		cur, err := ix.rollupCount(k)
		if err != nil {
			return err
		}
		next := int64(cur) + e.n
		if next < 0 {
			// Cannot happen: every decrement is of an event this index
			// counted. Keep the count at zero rather than stop indexing.
			ix.log.Error("event count would go below zero; kept at zero", "key", fmt.Sprintf("%q", k), "count", cur, "change", e.n)
			next = 0
		}
		if next == 0 {
			err = b.Delete(k, nil)
		} else {
			binary.BigEndian.PutUint64(val[:], uint64(next))
			err = b.Set(k, val[:], nil)
		}
		if err != nil {
			return fmt.Errorf("batch event count: %w", err)
		}
	}
	return nil
}

// rollupCount reads the committed count of u key k (0 when absent). A Get
// per key: one iterator for the batch's reads, its seeks in key order,
// cost as much (BenchmarkRollupWrite, ts=spread).
func (ix *Index) rollupCount(k []byte) (uint64, error) {
	v, closer, err := ix.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read event count: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("event count %q: %w", k, errBadValue)
	}
	return binary.BigEndian.Uint64(v), nil
}

// StatsQuery selects event counts.
type StatsQuery struct {
	Interval time.Duration // time.Minute, time.Hour or 24*time.Hour
	// From and To are required: the answer holds every bucket that
	// overlaps [From, To), whole (From rounded down to a bucket start, To
	// up).
	From, To time.Time
	Category string // filter
	Name     string // filter; requires Category
}

// StatsBucket counts the valid events whose timestamp lies in [Start,
// Start+interval).
type StatsBucket struct {
	Start  time.Time
	Total  uint64
	ByType []TypeCount // the types with events, by category then name
}

// EventStats is the answer to a StatsQuery.
type EventStats struct {
	Interval time.Duration
	// IndexedSeq is the cursor the counts were read with: they count
	// exactly the valid events indexed up to it (retention: see rollup.go).
	IndexedSeq uint64
	Buckets    []StatsBucket // every bucket of the range, in time order, empty ones included
}

// EventStats reads the counts q selects from one consistent view of the
// index (the counts and the cursor they go with), without reading events.
// A bad query is a *theeye.Error with code theeye.EInvalidParam naming the
// parameter.
func (ix *Index) EventStats(ctx context.Context, q StatsQuery) (EventStats, error) {
	iv, lo, n, err := statsRange(q)
	if err != nil {
		return EventStats{}, err
	}
	out := EventStats{Interval: iv.d, Buckets: make([]StatsBucket, n)}
	for i := range out.Buckets {
		out.Buckets[i].Start = time.Unix(lo+int64(i)*iv.secs, 0).UTC()
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return EventStats{}, ErrClosed
	}
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	if out.IndexedSeq, _, err = readMeta(snap, metaCursor); err != nil {
		return EventStats{}, fmt.Errorf("stats: %w", err)
	}
	it, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: appendRollupBucket(nil, iv.code, lo),
		UpperBound: appendRollupBucket(nil, iv.code, lo+int64(n)*iv.secs),
	})
	if err != nil {
		return EventStats{}, fmt.Errorf("stats: new iterator: %w", err)
	}
	err = readCounts(ctx, it, iv, lo, q, out.Buckets, &ix.statsScratch)
	if cerr := it.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("stats: close iterator: %w", cerr)
	}
	if err != nil {
		return EventStats{}, err
	}
	return out, nil
}

// statsRange checks q and returns its interval, its first bucket start
// and how many buckets it spans.
func statsRange(q StatsQuery) (iv rollupInterval, lo int64, n int, err error) {
	iv, ok := intervalOf(q.Interval)
	switch {
	case !ok:
		return iv, 0, 0, theeye.Errorf(theeye.EInvalidParam, "interval %s: want 1m, 1h or 1d", q.Interval).WithDetail("parameter", "interval")
	case q.From.IsZero() || q.To.IsZero():
		return iv, 0, 0, theeye.Errorf(theeye.EInvalidParam, "stats need both from and to").WithDetail("parameter", "from")
	case !q.To.After(q.From):
		return iv, 0, 0, theeye.Errorf(theeye.EInvalidParam, "to (%s) must be after from (%s)", theeye.FormatTime(q.To), theeye.FormatTime(q.From)).WithDetail("parameter", "to")
	case q.Name != "" && q.Category == "":
		return iv, 0, 0, theeye.Errorf(theeye.EInvalidParam, "name needs category: event types are category + name").WithDetail("parameter", "name")
	}
	// Unix() rounds down (the nanoseconds of a Time are never negative).
	lo = floorDiv(q.From.Unix(), iv.secs) * iv.secs
	top := q.To.Unix()
	if q.To.Nanosecond() > 0 {
		top++
	}
	hi := -floorDiv(-top, iv.secs) * iv.secs
	if buckets := (hi - lo) / iv.secs; buckets > MaxStatsBuckets {
		return iv, 0, 0, theeye.Errorf(theeye.EInvalidParam,
			"from %s to %s holds %d buckets of %s, more than the %d one answer may hold: narrow from and to, or use a wider interval",
			theeye.FormatTime(q.From), theeye.FormatTime(q.To), buckets, iv.name, MaxStatsBuckets).
			WithDetail("parameter", "to").WithDetail("buckets", buckets).WithDetail("max_buckets", MaxStatsBuckets)
	}
	return iv, lo, int((hi - lo) / iv.secs), nil
}

// statsScratch holds what readCounts grows and throws away, kept for the
// next query (a 30-day hourly answer of 20 types gathers 14,400 counts).
type statsScratch struct {
	all       []statsCount
	prev, cur []statsType
}

// statsCount is one count as readCounts gathers it: without pointers, so
// the garbage collector has nothing to scan and growing it is a copy; the
// buckets' ByType are made from them at the end, in one allocation.
type statsCount struct {
	typ    int32 // index in the types met
	bucket int32
	n      uint64
}

// statsType is a type at its place in a bucket's list.
type statsType struct {
	enc string // str(category) str(name)
	typ int32  // index in the types met
}

// readCounts fills buckets (the first starting at lo) from the u keys of
// iv that it iterates over. With a category (and name) filter it skips
// from bucket to bucket with seeks, reading only the keys of that type.
// The keys of a bucket come in type order, mostly the same types as the
// bucket before: a type is matched against the one at the same place in
// the bucket before, else looked up, and decoded (and checked) once.
func readCounts(ctx context.Context, it *pebble.Iterator, iv rollupInterval, lo int64, q StatsQuery, buckets []StatsBucket, scratch *sync.Pool) error {
	var filter []byte // str(category) [str(name)]
	if q.Category != "" {
		filter = appendString(nil, q.Category)
		if q.Name != "" {
			filter = appendString(filter, q.Name)
		}
	}
	var target []byte
	seek := func(start int64) bool {
		target = append(appendRollupBucket(target[:0], iv.code, start), filter...)
		return it.SeekGE(target)
	}
	var types []TypeCount       // each type met, decoded once
	byEnc := map[string]int32{} // str(category) str(name) -> index in types
	sc, _ := scratch.Get().(*statsScratch)
	if sc == nil {
		sc = &statsScratch{}
	}
	defer func() {
		sc.all, sc.prev, sc.cur = sc.all[:0], sc.prev[:0], sc.cur[:0]
		clear(sc.prev[:cap(sc.prev)]) // no strings kept alive in the pool
		clear(sc.cur[:cap(sc.cur)])
		scratch.Put(sc)
	}()
	all, prev, cur := sc.all, sc.prev, sc.cur
	bucket := int32(-1)
	for ok, visited := seek(lo), 1; ok; visited++ {
		if visited%ctxCheckKeys == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("stats: %w", err)
			}
		}
		k := it.Key()
		if len(k) < rollupBucketLen || k[0] != ksRollup || k[1] != iv.code {
			return fmt.Errorf("stats: key %q: %w", k, errKeyspace)
		}
		start, enc, _ := decodeTimestamp(k[2:])
		if filter != nil && !bytes.HasPrefix(enc, filter) {
			if bytes.Compare(enc, filter) < 0 {
				ok = seek(start)
			} else {
				ok = seek(start + iv.secs)
			}
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("stats: read count: %w", err)
		}
		if len(v) != 8 {
			return fmt.Errorf("stats: count of %q: %w", k, errBadValue)
		}
		if i := int32((start - lo) / iv.secs); i != bucket {
			bucket, prev, cur = i, cur, prev[:0]
		}
		var t int32
		if j := len(cur); j < len(prev) && prev[j].enc == string(enc) {
			t = prev[j].typ
			cur = append(cur, prev[j])
		} else {
			var seen bool
			if t, seen = byEnc[string(enc)]; !seen {
				var tc TypeCount
				if tc.Category, tc.Name, err = decodeRollupType(enc); err != nil {
					return fmt.Errorf("stats: key %q: %w", k, err)
				}
				t = int32(len(types))
				types = append(types, tc)
				byEnc[string(enc)] = t
			}
			cur = append(cur, statsType{string(enc), t})
		}
		if len(all) == MaxStatsCounts {
			return theeye.Errorf(theeye.EInvalidParam,
				"the answer would hold more than %d counts by type: narrow from and to, use a wider interval, or filter by category", MaxStatsCounts).
				WithDetail("parameter", "to").WithDetail("max_counts", MaxStatsCounts)
		}
		n := binary.BigEndian.Uint64(v)
		buckets[bucket].Total += n
		all = append(all, statsCount{t, bucket, n})
		ok = it.Next()
	}
	sc.all, sc.prev, sc.cur = all, prev, cur // what grew, kept for the next query
	if err := it.Error(); err != nil {
		return fmt.Errorf("stats: iterate: %w", err)
	}
	out := make([]TypeCount, len(all))
	for i := 0; i < len(all); {
		j := i
		for ; j < len(all) && all[j].bucket == all[i].bucket; j++ {
			out[j] = types[all[j].typ]
			out[j].Count = all[j].n
		}
		buckets[all[i].bucket].ByType = out[i:j:j]
		i = j
	}
	return nil
}

// AppendJSON appends the answer of GET /v1/stats (API.md, "For analysts"):
//
//	{"interval":"1h","buckets":[{"start":"…","total":N,"by_type":[{"category","name","count"}]}]}
//
// The {"category":…,"name":…,"count": of the type at each place of a
// bucket's list is rendered once, and again only when another type comes
// at that place (the buckets of a range mostly list the same types).
func (s *EventStats) AppendJSON(dst []byte) []byte {
	iv, _ := intervalOf(s.Interval)
	dst = append(dst, `{"interval":"`...)
	dst = append(dst, iv.name...)
	dst = append(dst, `","buckets":[`...)
	type rendered struct {
		category, name string
		json           []byte
	}
	var at []rendered // by place in the list
	for i := range s.Buckets {
		b := &s.Buckets[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"start":"`...)
		dst = b.Start.UTC().AppendFormat(dst, time.RFC3339)
		dst = append(dst, `","total":`...)
		dst = strconv.AppendUint(dst, b.Total, 10)
		dst = append(dst, `,"by_type":[`...)
		for j, tc := range b.ByType {
			if j > 0 {
				dst = append(dst, ',')
			}
			if j == len(at) {
				at = append(at, rendered{})
			}
			if r := &at[j]; r.json == nil || r.category != tc.Category || r.name != tc.Name {
				r.category, r.name = tc.Category, tc.Name
				r.json = append(r.json[:0], `{"category":`...)
				r.json = appendJSONString(r.json, tc.Category)
				r.json = append(r.json, `,"name":`...)
				r.json = appendJSONString(r.json, tc.Name)
				r.json = append(r.json, `,"count":`...)
			}
			dst = append(dst, at[j].json...)
			dst = strconv.AppendUint(dst, tc.Count, 10)
			dst = append(dst, '}')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}\n"...)
}
