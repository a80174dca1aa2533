package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/theeye/theeye"
)

// streamAll follows the stream from seq from until it has looked at seq
// to, in calls of maxEvents log events and maxBytes bytes, and returns the
// events passed to fn and the seqs they came with.
func streamAll(t *testing.T, ix *Index, q StreamQuery, from, to uint64, maxEvents, maxBytes int) ([]uint64, [][]byte) {
	t.Helper()
	var seqs []uint64
	var bodies [][]byte
	next := from
	for calls := 0; next <= to; calls++ {
		if calls > 100000 {
			t.Fatalf("ReadStream makes no progress at seq %d", next)
		}
		n, err := ix.ReadStream(context.Background(), q, next, maxEvents, maxBytes, func(seq uint64, ev []byte) error {
			seqs = append(seqs, seq)
			bodies = append(bodies, append([]byte(nil), ev...))
			return nil
		})
		if err != nil {
			t.Fatalf("ReadStream(%d): %v", next, err)
		}
		if n <= next && next <= ix.IndexedSeq() {
			t.Fatalf("ReadStream(%d) returned next %d: no progress", next, n)
		}
		next = n
	}
	return seqs, bodies
}

// indexedBodies is what the queries return for every valid event, by seq.
func indexedBodies(t *testing.T, ix *Index) map[uint64][]byte {
	t.Helper()
	out := map[uint64][]byte{}
	if _, err := ix.Events(context.Background(), EventQuery{}, func(b []byte) error {
		var g got
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
		out[g.Seq] = append([]byte(nil), b...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadStream_Model: over a log of valid and invalid events, retries
// and id conflicts, the stream passes each valid indexed event once, in
// seq order, with the very bytes the queries return, whatever the chunk
// sizes; each filter keeps exactly its events.
func TestReadStream_Model(t *testing.T) {
	src := newFakeSource()
	mixedLog(src, 3000, 42)
	ix := openTest(t, "", src, func(c *Config) { c.BatchSize = 128 })
	indexAll(t, ix)
	want := indexedBodies(t, ix)
	if len(want) == 0 || len(want) == 3000 {
		t.Fatalf("%d valid events of 3000: the log is not mixed", len(want))
	}
	wantSeqs := slices.Sorted(func(yield func(uint64) bool) {
		for s := range want {
			if !yield(s) {
				return
			}
		}
	})
	for _, chunk := range []struct{ events, bytes int }{{1, 0}, {7, 0}, {4096, 0}, {4096, 500}, {100, 1}} {
		seqs, bodies := streamAll(t, ix, StreamQuery{}, 1, 3000, chunk.events, chunk.bytes)
		if !slices.Equal(seqs, wantSeqs) {
			t.Fatalf("chunk %+v: %d events streamed, want %d in seq order", chunk, len(seqs), len(wantSeqs))
		}
		for i, s := range seqs {
			if !bytes.Equal(bodies[i], want[s]) {
				t.Fatalf("seq %d streamed as\n%s\nqueries return\n%s", s, bodies[i], want[s])
			}
		}
	}

	decoded := map[uint64]got{}
	for s, b := range want {
		var g got
		json.Unmarshal(b, &g)
		decoded[s] = g
	}
	for _, q := range []StreamQuery{
		{Category: "c1"}, {Category: "c2", Name: "n0"}, {App: "b"}, {Session: "s3"}, {App: "a", Category: "c0", Session: "s7"},
	} {
		var exp []uint64
		for _, s := range wantSeqs {
			g := decoded[s]
			if (q.Category == "" || g.Category == q.Category) && (q.Name == "" || g.Name == q.Name) &&
				(q.App == "" || g.App == q.App) && (q.Session == "" || g.SessionID == q.Session) {
				exp = append(exp, s)
			}
		}
		seqs, _ := streamAll(t, ix, q, 1, 3000, 256, 0)
		if !slices.Equal(seqs, exp) || len(exp) == 0 {
			t.Errorf("%+v: streamed %v, want %v", q, seqs, exp)
		}
	}
}

// TestReadStream_FollowsTheCursor: the stream never passes the committed
// cursor, and resuming from any seq neither skips nor repeats an event.
func TestReadStream_FollowsTheCursor(t *testing.T) {
	src := newFakeSource()
	ix := openTest(t, "", src)
	ts := baseTime.Add(-time.Minute)
	for i := range 10 {
		src.Append(mkEnv("a", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: ts.Add(time.Duration(i))}.raw()))
	}
	indexAll(t, ix)
	for i := range 10 {
		src.Append(mkEnv("a", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: ts.Add(time.Duration(i))}.raw()))
	}
	next, err := ix.ReadStream(context.Background(), StreamQuery{}, 1, 1000, 0, func(seq uint64, _ []byte) error {
		if seq > 10 {
			t.Errorf("seq %d streamed, indexed only up to 10", seq)
		}
		return nil
	})
	if err != nil || next != 11 {
		t.Fatalf("next %d, %v; want 11", next, err)
	}
	// Nothing past the cursor: next stays.
	if n, err := ix.ReadStream(context.Background(), StreamQuery{}, 11, 1000, 0, nil); err != nil || n != 11 {
		t.Fatalf("past the cursor: next %d, %v", n, err)
	}
	indexAll(t, ix)
	for from := uint64(1); from <= 20; from++ {
		seqs, _ := streamAll(t, ix, StreamQuery{}, from, 20, 3, 0)
		if len(seqs) != int(21-from) || seqs[0] != from || !slices.IsSorted(seqs) {
			t.Fatalf("from %d: %v", from, seqs)
		}
	}
}

// TestReadStream_SkipsWhatQueriesDoNotReturn: erased events (tombstones),
// events below the retention cut, invalid events and duplicates are never
// streamed; a revalidated event is, with its body.
func TestReadStream_SkipsWhatQueriesDoNotReturn(t *testing.T) {
	src := newFakeSource()
	reg := newFakeRegistry()
	ix := openTest(t, "", src, func(c *Config) { c.Rules = reg })
	ok := func(id string, i int) string {
		return evt{ID: id, Session: "s", Category: "c", Name: "n", Timestamp: baseTime.Add(time.Duration(-i) * time.Second)}.raw()
	}
	src.Append(mkEnv("a", baseTime, ok("", 1)))                               // 1 valid, below the cut
	src.Append(mkEnv("a", baseTime, ok("x", 2)))                              // 2 valid
	src.Append(mkEnv("a", baseTime, ok("x", 2)))                              // 3 duplicate of 2
	src.Append(mkEnv("a", baseTime, ok("x", 3)))                              // 4 duplicate_id_conflict
	src.Append(theeye.Envelope{ReceivedAt: baseTime.UnixNano(), App: "a"})    // 5 tombstone
	src.Append(mkEnv("a", baseTime, `{"session_id":"s","category":"c"}`))     // 6 invalid
	src.Append(mkEnv("a", baseTime, `[1,2]`))                                 // 7 not an object
	src.Append(mkEnv("a", baseTime, ok("", 4)))                               // 8 valid
	src.Append(mkEnv("a", baseTime, formEvent(`{"form":{"first_name":12}}`))) // 9 fails the schema below
	reg.put("form interaction", "submit", formSchema, 0)
	indexAll(t, ix)
	reg.mu.Lock()
	reg.retainFrom = 2
	reg.mu.Unlock()
	if seqs, _ := streamAll(t, ix, StreamQuery{}, 1, 9, 100, 0); !slices.Equal(seqs, []uint64{2, 8}) {
		t.Fatalf("streamed %v, want [2 8]", seqs)
	}
	// A fixed schema and a revalidation make seq 9 an event.
	reg.put("form interaction", "submit", `{"type":"object"}`, 9)
	reg.revalidate(theeye.Revalidation{}, 9)
	indexAll(t, ix)
	if seqs, _ := streamAll(t, ix, StreamQuery{}, 1, 9, 100, 0); !slices.Equal(seqs, []uint64{2, 8, 9}) {
		t.Fatalf("after revalidation streamed %v, want [2 8 9]", seqs)
	}
}

// TestReadStream_Errors: a bad query, a callback error and a cancelled
// context come back; a closed index says so.
func TestReadStream_Errors(t *testing.T) {
	src := newFakeSource()
	ix := openTest(t, "", src)
	for i := range 600 {
		src.Append(mkEnv("a", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime.Add(time.Duration(-i))}.raw()))
	}
	indexAll(t, ix)
	ctx := context.Background()
	if _, err := ix.ReadStream(ctx, StreamQuery{Name: "n"}, 1, 10, 0, nil); theeye.ErrorCode(err) != theeye.EInvalidParam {
		t.Fatalf("name without category: %v", err)
	}
	boom := errors.New("boom")
	n, err := ix.ReadStream(ctx, StreamQuery{}, 1, 100, 0, func(seq uint64, _ []byte) error {
		if seq == 5 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 6 {
		t.Fatalf("callback error: next %d, %v", n, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ix.ReadStream(cctx, StreamQuery{}, 1, 600, 0, func(uint64, []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	ix2 := openTest(t, "", nil)
	if _, err := ix2.ReadStream(ctx, StreamQuery{}, 1, 10, 0, nil); err == nil {
		t.Fatal("no source: no error")
	}
}

// BenchmarkReadStream is the cost of one stream reader per log event:
// decompression is not in it (the fake log holds plain envelopes); the
// parse and the body lookup are.
func BenchmarkReadStream(b *testing.B) {
	for _, bc := range []struct {
		name string
		q    StreamQuery
	}{{"all", StreamQuery{}}, {"category", StreamQuery{Category: "c1"}}, {"app-miss", StreamQuery{App: "nobody"}}} {
		b.Run(bc.name, func(b *testing.B) {
			src := newFakeSource()
			for i := range 20000 {
				src.Append(mkEnv("a", baseTime, evt{Session: "s" + string(rune('a'+i%20)), Category: "c" + string(rune('0'+i%3)),
					Name: "n", Timestamp: baseTime.Add(time.Duration(-i) * time.Millisecond), Data: `{"host":"www.example.com","path":"/x"}`}.raw()))
			}
			ix := openTest(b, "", src)
			if _, err := ix.IndexOnce(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			events := 0
			for b.Loop() {
				next := uint64(1)
				for next <= 20000 {
					var err error
					next, err = ix.ReadStream(context.Background(), bc.q, next, 4096, 256<<10, func(uint64, []byte) error { return nil })
					if err != nil {
						b.Fatal(err)
					}
				}
				events += 20000
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/log-event")
		})
	}
}
