package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
)

// synthSource is a Source of n synthetic events that costs no memory per
// event: seq i is a template from a pool of realistic events, received i µs
// after baseTime. Sessions hold sessionLen consecutive events each.
type synthSource struct {
	n          uint64
	sessionLen int
	withIDs    bool // every event carries a client id (a dedupe Get each)
	// tsSpread, when set, spreads the timestamps over that much time
	// before receipt (BenchmarkIndexBatchRollup).
	tsSpread time.Duration
	pool     []theeye.Envelope
}

func newSynthSource(n uint64, sessionLen int) *synthSource {
	r := rand.New(rand.NewPCG(42, 42))
	s := &synthSource{n: n, sessionLen: sessionLen}
	hosts := []string{"www.consumeraffairs.com", "shop.example.com", "m.example.org"}
	cats := []string{"page interaction", "form interaction", "commerce"}
	names := []string{"pageview", "cta click", "submit", "add to cart"}
	for range 1024 {
		s.pool = append(s.pool, theeye.Envelope{
			App: []string{"shop-web", "shop-ios"}[r.IntN(2)],
			Raw: fmt.Appendf(nil, `{"session_id":"%%s","category":%q,"name":%q,"data":{"host":%q,"path":"/p/%d","element":"chat bubble","ms":%d},"timestamp":"%%s","ua":"Mozilla/5.0 (X11; Linux x86_64)"}`,
				cats[r.IntN(len(cats))], names[r.IntN(len(names))], hosts[r.IntN(len(hosts))], r.IntN(100000), r.IntN(5000)),
		})
	}
	return s
}

func (s *synthSource) LastSeq() uint64          { return s.n }
func (s *synthSource) FirstSeq() uint64         { return 1 }
func (s *synthSource) Changed() <-chan struct{} { return nil }

func (s *synthSource) session(seq uint64) string {
	return fmt.Sprintf("%08x-9137-4e4e-80b5-f1ffddc25423", (seq-1)/uint64(s.sessionLen))
}

func (s *synthSource) ReadFrom(from uint64, max int, fn func(uint64, *theeye.Envelope) error) (int, error) {
	var raw []byte
	n := 0
	for seq := from; seq < from+uint64(max) && seq <= s.n; seq++ {
		env := s.pool[seq%uint64(len(s.pool))]
		recv := baseTime.Add(time.Duration(seq) * time.Microsecond)
		ts := recv.Add(-time.Duration(seq%1000) * time.Millisecond).Format(time.RFC3339Nano)
		if s.tsSpread > 0 {
			ts = recv.Add(-time.Duration((seq * 0x9e3779b97f4a7c15) % uint64(s.tsSpread))).Format(time.RFC3339Nano)
		}
		raw = raw[:0]
		if s.withIDs {
			raw = fmt.Appendf(raw, `{"id":"ev-%d",`, seq)
			raw = fmt.Appendf(raw, string(env.Raw[1:]), s.session(seq), ts)
		} else {
			raw = fmt.Appendf(raw, string(env.Raw), s.session(seq), ts)
		}
		env.Raw = raw
		env.ReceivedAt = recv.UnixNano()
		env.ID[15] = byte(seq)
		if err := fn(seq, &env); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// BenchmarkIndexBatch measures the indexer end to end (parse, validate,
// render, five keys per event, commit NoSync) per event.
func BenchmarkIndexBatch(b *testing.B) {
	for _, c := range []struct {
		batch int
		ids   bool
	}{{256, false}, {2048, false}, {2048, true}} {
		name := fmt.Sprintf("values=pointer/batch=%d", c.batch)
		if c.ids {
			name += "/ids=client"
		}
		b.Run(name, func(b *testing.B) {
			src := newSynthSource(uint64(b.N), 50)
			src.withIDs = c.ids
			indexTimed(b, openTest(b, "", src, func(cfg *Config) { cfg.BatchSize = c.batch; cfg.CacheSize = 64 << 20 }))
		})
	}
	benchIndexBatchSchema(b)
}

// indexTimed indexes the b.N events of ix's source, timed, and checks all
// of them became events.
func indexTimed(b *testing.B, ix *Index) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if _, err := ix.IndexOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	if st := ix.Stats(); st.Events != uint64(b.N) {
		b.Fatalf("stats %+v", st)
	}
}

// benchIndexBatchSchema measures what JSON Schema validation costs the
// indexer: no checker, against a schema registered for every event type of
// the synthetic log (decode data + validate, per event).
// Run as BenchmarkIndexBatch/schema=none|all.
func benchIndexBatchSchema(b *testing.B) {
	const doc = `{"type":"object","required":["host","path"],"properties":{"host":{"type":"string"},"path":{"type":"string"},"element":{"type":"string"},"ms":{"type":"integer","minimum":0}}}`
	for _, schemas := range []string{"none", "all"} {
		b.Run("schema="+schemas, func(b *testing.B) {
			src := newSynthSource(uint64(b.N), 50)
			edit := func(cfg *Config) { cfg.BatchSize = 2048; cfg.CacheSize = 64 << 20 }
			if schemas == "all" {
				reg := newFakeRegistry()
				for _, c := range []string{"page interaction", "form interaction", "commerce"} {
					for _, n := range []string{"pageview", "cta click", "submit", "add to cart"} {
						reg.put(c, n, doc, 0)
					}
				}
				c := theeye.DefaultClusterConfig()
				c.UnknownTypes = theeye.UnknownReject
				reg.setConfig(c, 0)
				edit = func(cfg *Config) {
					cfg.BatchSize = 2048
					cfg.CacheSize = 64 << 20
					cfg.Rules = reg
				}
			}
			indexTimed(b, openTest(b, "", src, edit))
		})
	}
}

// BenchmarkPebbleLayout isolates the Pebble cost of three layouts with the
// same keys, pre-rendered: layout=body-in-s-and-c is what this package
// writes (layout 4: the body under the session key and under the category
// key, pointers n holding the app and t holding app + category);
// layout=body-in-s is layout 3 (the body under the session key, pointers
// c, n, t holding app + session); layout=body-in-e is layout 2 (the body
// once under e/<seq>, pointers s, c, n, t holding the app).
func BenchmarkPebbleLayout(b *testing.B) {
	const batch = 2048
	src := newSynthSource(1<<16, 50)
	type kv struct{ k, v []byte }
	layouts := map[string][][]kv{} // per layout, per event
	_, _ = src.ReadFrom(1, 1<<16, func(seq uint64, env *theeye.Envelope) error {
		ev, reasons := theeye.ParseEvent(env.Raw, env.ReceivedTime(), theeye.DefaultPolicy())
		if len(reasons) > 0 {
			return errors.New("invalid synthetic event")
		}
		ts := ev.Timestamp.UnixNano()
		body := appendEvent(nil, seq, env, &ev)
		withApp := append(appendAppValue(nil, env.App, ""), body...)
		layouts["body-in-s-and-c"] = append(layouts["body-in-s-and-c"], []kv{
			{appendSessionKey(nil, ev.SessionID, ts, seq), withApp},
			{appendCategoryKey(nil, ev.Category, ts, seq), withApp},
			{appendNameKey(nil, ev.Category, ev.Name, ts, seq), appendAppValue(nil, env.App, "")},
			{appendTimeKey(nil, ts, seq), appendAppValue(nil, env.App, ev.Category)},
		})
		ptr := appendAppValue(nil, env.App, ev.SessionID)
		layouts["body-in-s"] = append(layouts["body-in-s"], []kv{
			{appendSessionKey(nil, ev.SessionID, ts, seq), withApp},
			{appendCategoryKey(nil, ev.Category, ts, seq), ptr},
			{appendNameKey(nil, ev.Category, ev.Name, ts, seq), ptr},
			{appendTimeKey(nil, ts, seq), ptr},
		})
		app := []byte(env.App)
		layouts["body-in-e"] = append(layouts["body-in-e"], []kv{
			{appendUint64([]byte{'e'}, seq), body},
			{appendSessionKey(nil, ev.SessionID, ts, seq), app},
			{appendCategoryKey(nil, ev.Category, ts, seq), app},
			{appendNameKey(nil, ev.Category, ev.Name, ts, seq), app},
			{appendTimeKey(nil, ts, seq), app},
		})
		return nil
	})
	for _, layout := range []string{"body-in-s-and-c", "body-in-s", "body-in-e"} {
		keys := layouts[layout]
		b.Run(fmt.Sprintf("layout=%s/batch=%d", layout, batch), func(b *testing.B) {
			ix := openTest(b, "", nil, func(c *Config) { c.CacheSize = 64 << 20 })
			b.ReportAllocs()
			b.ResetTimer()
			bt := ix.db.NewBatch()
			var kbuf []byte
			for i := range b.N {
				seq := uint64(i + 1)
				for _, p := range keys[i%len(keys)] {
					kbuf = append(kbuf[:0], p.k...)
					putSeq(kbuf, seq) // distinct keys across laps of the pool
					if err := bt.Set(kbuf, p.v, nil); err != nil {
						b.Fatal(err)
					}
				}
				if (i+1)%batch == 0 || i == b.N-1 {
					if err := bt.Commit(pebble.NoSync); err != nil {
						b.Fatal(err)
					}
					bt.Close()
					bt = ix.db.NewBatch()
				}
			}
			bt.Close()
		})
	}
}

func putSeq(k []byte, seq uint64) {
	for i := range 8 {
		k[len(k)-1-i] = byte(seq >> (8 * i))
	}
}

// benchIndex is an index of n synthetic events in sessions of sessionLen,
// compacted, as a long-running node's would mostly be.
func benchIndex(b *testing.B, n uint64, sessionLen int) (*Index, *synthSource) {
	b.Helper()
	src := newSynthSource(n, sessionLen)
	ix := openTest(b, "", src, func(c *Config) { c.CacheSize = 64 << 20 })
	if _, err := ix.IndexOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := ix.db.Compact(context.Background(), []byte{0}, []byte{0xFF}, true); err != nil {
		b.Fatal(err)
	}
	return ix, src
}

// BenchmarkSessionQuery reads one whole session (pointer scan + one body
// read per event) from an index of 100k events.
func BenchmarkSessionQuery(b *testing.B) {
	const total = 100_000
	for _, per := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("events=%d", per), func(b *testing.B) {
			ix, src := benchIndex(b, total, per)
			r := rand.New(rand.NewPCG(1, 1))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				q := EventQuery{Session: src.session(1 + r.Uint64N(total))}
				n := 0
				if _, err := ix.Events(context.Background(), q, func([]byte) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != per {
					b.Fatalf("%d events, want %d", n, per)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*per), "ns/event")
		})
	}
}

// BenchmarkCategoryQuery reads a page of 100 events in a time range, the
// shape of GET /v1/events: by=category+name (pointers into the category
// keyspace; what this benchmark measured alone before layout 4),
// by=category (one scan of the bodies), by=time (pointers, no category).
func BenchmarkCategoryQuery(b *testing.B) {
	const total = 100_000
	ix, _ := benchIndex(b, total, 100)
	for _, by := range []string{"category+name", "category", "time"} {
		b.Run("by="+by, func(b *testing.B) {
			r := rand.New(rand.NewPCG(2, 2))
			b.ReportAllocs()
			for b.Loop() {
				from := baseTime.Add(time.Duration(r.Int64N(total/2)) * time.Microsecond)
				q := EventQuery{From: from, Limit: 100}
				switch by {
				case "category+name":
					q.Category, q.Name = "page interaction", "pageview"
				case "category":
					q.Category = "page interaction"
				}
				n := 0
				if _, err := ix.Events(context.Background(), q, func([]byte) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != 100 {
					b.Fatalf("%d events", n)
				}
			}
		})
	}
}

// BenchmarkBodyLookup measures what a time (or category and name) query
// pays per event: from a pointer to its body in the category keyspace, 100
// pointers of one time range at a time. how=get is a point DB.Get per body (bloom
// filters skip the tables without it), how=iter one iterator over the
// category keyspace with a SeekGE to each, how=prefix the same iterator with
// SeekPrefixGE (bloom filters, no allocation: what the query side does).
func BenchmarkBodyLookup(b *testing.B) {
	const total = 100_000
	ix, _ := benchIndex(b, total, 100)
	var ptrs [][2][]byte // (pointer key, category) of the t keyspace, in time order
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: []byte{ksTime}, UpperBound: []byte{ksTime + 1}})
	if err != nil {
		b.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		_, cat, err := decodeAppValue(it.Value())
		if err != nil {
			b.Fatal(err)
		}
		ptrs = append(ptrs, [2][]byte{append([]byte(nil), it.Key()...), append([]byte(nil), cat...)})
	}
	if err := it.Close(); err != nil || len(ptrs) != total {
		b.Fatalf("%d pointers, %v", len(ptrs), err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	const page = 100
	for _, how := range []string{"get", "iter", "prefix"} {
		b.Run("how="+how, func(b *testing.B) {
			b.ReportAllocs()
			var key []byte
			for i := 0; i < b.N; i += page {
				start := r.IntN(total - page)
				var it *pebble.Iterator
				if how != "get" {
					if it, err = ix.db.NewIter(&pebble.IterOptions{LowerBound: []byte{ksCat}, UpperBound: []byte{ksCat + 1}}); err != nil {
						b.Fatal(err)
					}
				}
				for _, p := range ptrs[start : start+page] {
					key = appendBodyKey(key[:0], p[1], p[0])
					if how == "get" {
						v, closer, err := ix.db.Get(key)
						if err != nil || len(v) == 0 {
							b.Fatal(err)
						}
						closer.Close()
					} else if how == "iter" && (!it.SeekGE(key) || !bytes.Equal(it.Key(), key)) {
						b.Fatal("body not found")
					} else if how == "prefix" && !it.SeekPrefixGE(key) {
						b.Fatal("body not found")
					}
				}
				if it != nil {
					it.Close()
				}
			}
		})
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	src := newSynthSource(1, 1)
	var env theeye.Envelope
	var ev theeye.Event
	_, _ = src.ReadFrom(1, 1, func(seq uint64, e *theeye.Envelope) error {
		env = *e
		env.Raw = append([]byte(nil), e.Raw...)
		ev, _ = theeye.ParseEvent(env.Raw, env.ReceivedTime(), theeye.DefaultPolicy())
		return nil
	})
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEvent(buf[:0], 1, &env, &ev)
	}
	b.SetBytes(int64(len(buf)))
}
