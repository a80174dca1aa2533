package index

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// rollupEvent is what the counts are kept from.
type rollupEvent struct {
	ns        int64
	cat, name string
}

// rollupEvents returns n events of 20 types: live, their timestamps follow
// the log 180 ms apart (as bench W4 loads them: 1,000 events per
// category-hour), or spread uniformly over 30 days (a backfill: the worst
// case, nearly every event a minute key of its own in a batch).
func rollupEvents(n int, spread bool) []rollupEvent {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]rollupEvent, n)
	for i := range out {
		c := i % 20
		out[i] = rollupEvent{ns: baseTime.Add(time.Duration(i) * 180 * time.Millisecond).UnixNano(),
			cat: fmt.Sprintf("category-%d", c), name: []string{"pageview", "cta click", "submit", "scroll", "hover"}[c%5]}
		if spread {
			out[i].ns = baseTime.Add(-time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))).UnixNano()
		}
	}
	return out
}

// addMerger is a Pebble merge operator that adds big-endian uint64s: the
// alternative to read-modify-write that BenchmarkRollupWrite measures.
type addMerger struct{ sum uint64 }

func (m *addMerger) MergeNewer(v []byte) error { m.sum += binary.BigEndian.Uint64(v); return nil }
func (m *addMerger) MergeOlder(v []byte) error { m.sum += binary.BigEndian.Uint64(v); return nil }
func (m *addMerger) Finish(bool) ([]byte, io.Closer, error) {
	return binary.BigEndian.AppendUint64(nil, m.sum), nil, nil
}

func addMergerOption() *pebble.Merger {
	return &pebble.Merger{Name: "theeye.bench.add", Merge: func(_, v []byte) (pebble.ValueMerger, error) {
		return &addMerger{sum: binary.BigEndian.Uint64(v)}, nil
	}}
}

// openMergeDB opens a Pebble with the index's options and addMerger.
func openMergeDB(b *testing.B) *pebble.DB {
	cfg := Config{Dir: b.TempDir(), CacheSize: 64 << 20, MemTableSize: DefaultMemTableSize, Logger: slog.New(slog.DiscardHandler)}
	cache := pebble.NewCache(cfg.CacheSize + 2*cfg.MemTableSize)
	defer cache.Unref()
	opts := pebbleOptions(&cfg, cache)
	opts.Merger = addMergerOption()
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// rollupWriter writes the counts of batches of events one way.
type rollupWriter func(b *pebble.Batch, evs []rollupEvent) error

// writeRollup writes evs in batches of 2048 events, committed NoSync.
func writeRollup(b testing.TB, db *pebble.DB, evs []rollupEvent, w rollupWriter) {
	batch := db.NewBatch()
	defer batch.Close()
	for i := 0; i < len(evs); i += DefaultBatchSize {
		batch.Reset()
		if err := w(batch, evs[i:min(i+DefaultBatchSize, len(evs))]); err != nil {
			b.Fatal(err)
		}
		if err := batch.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
	}
}

// rollupWriters are the ways measured: rmw is what the indexer does
// (sums per batch, then a Get and a Set per distinct key), merge the same
// sums as merge operands (no reads), merge-each a merge operand per event
// and interval (no sums).
func rollupWriters(ix *Index) map[string]rollupWriter {
	d := &rollupDelta{}
	val := make([]byte, 8)
	return map[string]rollupWriter{
		"rmw": func(b *pebble.Batch, evs []rollupEvent) error {
			ix.state.rollup.reset()
			for _, e := range evs {
				ix.state.rollup.add(e.ns, e.cat, e.name, 1)
			}
			return ix.applyRollup(b)
		},
		"merge": func(b *pebble.Batch, evs []rollupEvent) error {
			d.reset()
			for _, e := range evs {
				d.add(e.ns, e.cat, e.name, 1)
			}
			for _, e := range d.sum() {
				binary.BigEndian.PutUint64(val, uint64(e.n))
				if err := b.Merge(d.arena[e.k0:e.k1], val, nil); err != nil {
					return err
				}
			}
			return nil
		},
		"merge-each": func(b *pebble.Batch, evs []rollupEvent) error {
			binary.BigEndian.PutUint64(val, 1)
			for _, e := range evs {
				minute := floorDiv(e.ns, int64(time.Minute)) * 60
				for _, iv := range rollupIntervals {
					d.key = appendRollupKey(d.key[:0], iv.code, floorDiv(minute, iv.secs)*iv.secs, e.cat, e.name)
					if err := b.Merge(d.key, val, nil); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
}

// BenchmarkRollupWrite: what keeping the counts costs per event, alone
// (no other key), by timestamps and by way of writing.
func BenchmarkRollupWrite(b *testing.B) {
	for _, ts := range []string{"live", "spread"} {
		for _, how := range []string{"rmw", "merge", "merge-each"} {
			b.Run("ts="+ts+"/write="+how, func(b *testing.B) {
				evs := rollupEvents(b.N, ts == "spread")
				var db *pebble.DB
				ix := openTest(b, "", nil, func(c *Config) { c.CacheSize = 64 << 20 })
				if strings.HasPrefix(how, "rmw") {
					db = ix.db
				} else {
					db = openMergeDB(b)
				}
				w := rollupWriters(ix)[how]
				b.ReportAllocs()
				b.ResetTimer()
				writeRollup(b, db, evs, w)
			})
		}
	}
}

// BenchmarkRollupRead: what bench W8 asks (30 days, hourly, every type),
// on counts of 200k events spread over the 30 days (14,400 hour keys),
// written by read-modify-write or as merge operands, before and after a
// compaction folds them.
func BenchmarkRollupRead(b *testing.B) {
	const n = 200_000
	evs := rollupEvents(n, true)
	from := baseTime.Add(-30 * 24 * time.Hour)
	q := StatsQuery{Interval: time.Hour, From: from, To: baseTime.Add(time.Hour)}
	for _, how := range []string{"rmw", "merge"} {
		ix := openTest(b, "", nil, func(c *Config) { c.CacheSize = 64 << 20 })
		db := ix.db
		if how == "merge" {
			db = openMergeDB(b)
		}
		writeRollup(b, db, evs, rollupWriters(ix)[how])
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
		for _, compacted := range []bool{false, true} {
			if compacted {
				if err := db.Compact(context.Background(), []byte{ksRollup}, []byte{ksRollup + 1}, false); err != nil {
					b.Fatal(err)
				}
			}
			b.Run(fmt.Sprintf("write=%s/compacted=%t/scan", how, compacted), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if total := scanHours(b, db, from, baseTime.Add(time.Hour)); total != n {
						b.Fatalf("total %d", total)
					}
				}
			})
			if how == "rmw" {
				b.Run(fmt.Sprintf("write=rmw/compacted=%t/EventStats", compacted), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if st, err := ix.EventStats(context.Background(), q); err != nil || len(st.Buckets) != 721 {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// scanHours sums the hour counts of [from, to) with one iterator (the
// values merged by it when they are merge operands).
func scanHours(b *testing.B, db *pebble.DB, from, to time.Time) uint64 {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: appendRollupBucket(nil, 'h', from.Unix()/3600*3600),
		UpperBound: appendRollupBucket(nil, 'h', to.Unix())})
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	total := uint64(0)
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			b.Fatal(err)
		}
		total += binary.BigEndian.Uint64(v)
	}
	return total
}

// BenchmarkIndexBatchRollup is BenchmarkIndexBatch/schema=none (the
// indexer end to end) with the timestamps of synthSource (within a second
// of the log) or spread over 30 days (a backfill: the counts' worst case).
func BenchmarkIndexBatchRollup(b *testing.B) {
	for _, spread := range []time.Duration{0, 30 * 24 * time.Hour} {
		b.Run(fmt.Sprintf("ts_spread=%s", spread), func(b *testing.B) {
			src := newSynthSource(uint64(b.N), 50)
			src.tsSpread = spread
			indexTimed(b, openTest(b, "", src, func(cfg *Config) { cfg.BatchSize = 2048; cfg.CacheSize = 64 << 20 }))
		})
	}
}

// BenchmarkStatsQuery is bench W8's query on counts shaped like the W4
// store at 10M events (500 hours of 20 types, every minute filled;
// compacted): 30 days by hour, every type or one category, read
// (EventStats) and rendered (AppendJSON).
func BenchmarkStatsQuery(b *testing.B) {
	ix := openTest(b, "", nil, func(c *Config) { c.CacheSize = 64 << 20 })
	d := &ix.state.rollup
	batch := ix.db.NewBatch()
	for h := range 500 {
		d.reset()
		for m := range 60 {
			for c := range 20 {
				ns := baseTime.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).UnixNano()
				d.add(ns, fmt.Sprintf("category-%d", c), []string{"pageview", "cta click", "submit", "scroll", "hover"}[c%5], 17)
			}
		}
		batch.Reset()
		if err := ix.applyRollup(batch); err != nil {
			b.Fatal(err)
		}
		if err := batch.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
	}
	batch.Close()
	if err := ix.db.Compact(context.Background(), []byte{ksRollup}, []byte{ksRollup + 1}, false); err != nil {
		b.Fatal(err)
	}
	for _, cat := range []string{"", "category-3"} {
		q := StatsQuery{Interval: time.Hour, From: baseTime, To: baseTime.Add(30 * 24 * time.Hour), Category: cat}
		b.Run(fmt.Sprintf("category=%q", cat), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				st, err := ix.EventStats(context.Background(), q)
				if err != nil || len(st.Buckets) != 720 {
					b.Fatal(err)
				}
				buf = st.AppendJSON(buf[:0])
			}
			b.ReportMetric(float64(len(buf)), "bytes/answer")
		})
	}
}
