package index

import (
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
	pool       []theeye.Envelope
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
				sch := NewSchemas(reg, true)
				edit = func(cfg *Config) {
					cfg.BatchSize = 2048
					cfg.CacheSize = 64 << 20
					cfg.Checker, cfg.Revalidator = sch, sch
				}
			}
			indexTimed(b, openTest(b, "", src, edit))
		})
	}
}

// BenchmarkPebbleLayout isolates the Pebble cost of the two layouts of
// DESIGN.md with the same keys, pre-rendered: the body once under e/<seq>
// and the app as the value of four pointer keys (what this package does),
// against the body as the value of each of the four keys.
func BenchmarkPebbleLayout(b *testing.B) {
	const batch = 2048
	src := newSynthSource(1<<16, 50)
	type kv struct{ k, v []byte }
	var keys [][]kv // per event, pointer layout
	_, _ = src.ReadFrom(1, 1<<16, func(seq uint64, env *theeye.Envelope) error {
		ev, reasons := theeye.ParseEvent(env.Raw, env.ReceivedTime(), theeye.DefaultPolicy())
		if len(reasons) > 0 {
			return errors.New("invalid synthetic event")
		}
		ts := ev.Timestamp.UnixNano()
		keys = append(keys, []kv{
			{appendEventKey(nil, seq), appendEvent(nil, seq, env, &ev)},
			{appendSessionKey(nil, ev.SessionID, ts, seq), []byte(env.App)},
			{appendCategoryKey(nil, ev.Category, ts, seq), []byte(env.App)},
			{appendNameKey(nil, ev.Category, ev.Name, ts, seq), []byte(env.App)},
			{appendTimeKey(nil, ts, seq), []byte(env.App)},
		})
		return nil
	})
	for _, full := range []bool{false, true} {
		name := "values=pointer"
		if full {
			name = "values=full"
		}
		b.Run(fmt.Sprintf("%s/batch=%d", name, batch), func(b *testing.B) {
			ix := openTest(b, "", nil, func(c *Config) { c.CacheSize = 64 << 20 })
			b.ReportAllocs()
			b.ResetTimer()
			bt := ix.db.NewBatch()
			var kbuf []byte
			for i := range b.N {
				ev := keys[i%len(keys)]
				seq := uint64(i + 1)
				for j, p := range ev {
					if full && j == 0 {
						continue
					}
					kbuf = append(kbuf[:0], p.k...)
					putSeq(kbuf, seq) // distinct keys across laps of the pool
					v := p.v
					if full {
						v = ev[0].v
					}
					if err := bt.Set(kbuf, v, nil); err != nil {
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

// BenchmarkCategoryQuery reads a page of 100 events of one category and
// name in a time range, the shape of GET /v1/events.
func BenchmarkCategoryQuery(b *testing.B) {
	const total = 100_000
	ix, _ := benchIndex(b, total, 100)
	r := rand.New(rand.NewPCG(2, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		from := baseTime.Add(time.Duration(r.Int64N(total/2)) * time.Microsecond)
		q := EventQuery{Category: "page interaction", Name: "pageview", From: from, Limit: 100}
		n := 0
		if _, err := ix.Events(context.Background(), q, func([]byte) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != 100 {
			b.Fatalf("%d events", n)
		}
	}
}

// BenchmarkBodyLookup measures reading e/<seq> for 100 pointers of a
// session: a point DB.Get per event against one iterator over the e
// keyspace, seeking (bodyReader, what the query side uses).
func BenchmarkBodyLookup(b *testing.B) {
	const total = 100_000
	ix, _ := benchIndex(b, total, 100)
	r := rand.New(rand.NewPCG(3, 3))
	seqs := make([]uint64, 100)
	b.Run("how=get", func(b *testing.B) {
		b.ReportAllocs()
		var key []byte
		for i := 0; i < b.N; i += len(seqs) {
			b.StopTimer()
			randomSortedSeqs(r, seqs, total)
			b.StartTimer()
			for _, seq := range seqs {
				key = appendEventKey(key[:0], seq)
				v, closer, err := ix.db.Get(key)
				if err != nil || len(v) == 0 {
					b.Fatal(err)
				}
				closer.Close()
			}
		}
	})
	b.Run("how=iter", func(b *testing.B) {
		b.ReportAllocs()
		var br bodyReader
		for i := 0; i < b.N; i += len(seqs) {
			b.StopTimer()
			randomSortedSeqs(r, seqs, total)
			b.StartTimer()
			for _, seq := range seqs {
				if _, err := br.get(ix.db, seq); err != nil {
					b.Fatal(err)
				}
			}
			if err := br.close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// randomSortedSeqs fills seqs with ascending seqs spread over [1, total],
// the access pattern of one session's pointers.
func randomSortedSeqs(r *rand.Rand, seqs []uint64, total uint64) {
	seq := 1 + r.Uint64N(total-uint64(len(seqs))*10)
	for i := range seqs {
		seqs[i] = seq
		seq += 1 + r.Uint64N(10)
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
