package index

import (
	"context"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// BenchmarkIndexSustained indexes b.N events into a store on disk and then
// waits until Pebble has no compaction or flush left to do, and reports the
// process CPU per event over all of it (the indexer, the memtable inserts,
// the flushes and the compactions they cause): what a node spends for each
// event it indexes under sustained load, which BenchmarkIndexBatch (one
// batch loop, compactions left running) does not show. Run it with a fixed
// count, e.g. -benchtime=1000000x: the compaction debt grows with the store.
func BenchmarkIndexSustained(b *testing.B) {
	src := newSynthSource(uint64(b.N), 50)
	ix := openTest(b, "", src, func(cfg *Config) { cfg.BatchSize = 2048; cfg.CacheSize = 64 << 20 })
	b.ReportAllocs()
	cpu0 := processCPU(b)
	b.ResetTimer()
	start := time.Now()
	if _, err := ix.IndexOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	indexed := time.Since(start)
	// Settled: no compaction or flush has run or started for a second
	// (Pebble may keep an estimated debt it does not act on: it is not a
	// criterion).
	deadline := time.Now().Add(5 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last pebble.Metrics
	quiet := 0
	for quiet < 20 {
		m := ix.db.Metrics()
		if m.Compact.NumInProgress == 0 && m.Flush.NumInProgress == 0 && m.Compact.Count == last.Compact.Count && m.Flush.Count == last.Flush.Count {
			quiet++
		} else {
			quiet = 0
		}
		last = *m
		if time.Now().After(deadline) {
			b.Fatalf("compactions still running after 5 minutes: %s", m)
		}
		<-tick.C
	}
	settled := time.Since(start) - time.Second
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	m := ix.db.Metrics()
	var written uint64
	for _, l := range m.Levels {
		written += l.TableBytesCompacted + l.TableBytesFlushed
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	b.ReportMetric(float64(b.N)/indexed.Seconds(), "indexed-events/s")
	b.ReportMetric((settled - indexed).Seconds(), "settle-s")
	b.ReportMetric(float64(written)/float64(b.N), "sst-B/event")
	if st := ix.Stats(); st.Events != uint64(b.N) {
		b.Fatalf("stats %+v", st)
	}
	// What the settled store costs a reader: read amplification (L0
	// sublevels plus the other non-empty levels) and the median time of
	// a whole-session read.
	b.ReportMetric(float64(m.ReadAmp()), "read-amp")
	r := rand.New(rand.NewPCG(1, 1))
	took := make([]time.Duration, 0, 2000)
	for range cap(took) {
		q := EventQuery{Session: src.session(1 + r.Uint64N(uint64(b.N)))}
		t0 := time.Now()
		if _, err := ix.Events(context.Background(), q, func([]byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds())/1e3, "session-p50-µs")
}

// processCPU is the user and system CPU this process has used.
func processCPU(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
