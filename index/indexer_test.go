package index

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theeye/theeye"
)

// mixedLog appends n events: valid ones, invalid ones, and retries of
// earlier client ids (some from another app).
func mixedLog(src *fakeSource, n int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	sent := map[string][]byte{} // app/id -> first raw event
	for i := range n {
		recv := baseTime.Add(time.Duration(i) * time.Millisecond)
		e := evt{
			Session:   fmt.Sprintf("s%d", r.IntN(20)),
			Category:  fmt.Sprintf("c%d", r.IntN(3)),
			Name:      fmt.Sprintf("n%d", r.IntN(3)),
			Timestamp: baseTime.Add(-time.Duration(r.IntN(1000)) * time.Second),
		}
		app := "a"
		switch r.IntN(10) {
		case 0:
			e.ID = fmt.Sprintf("id-%d", r.IntN(i+1)) // maybe a retry
		case 1:
			e.ID = fmt.Sprintf("id-%d", r.IntN(i+1))
			app = "b"
		case 2:
			e.Timestamp = baseTime.Add(time.Hour) // future
		}
		raw := []byte(e.raw())
		if e.ID != "" {
			k := app + "/" + e.ID
			if first, ok := sent[k]; !ok {
				sent[k] = raw
			} else if r.IntN(2) == 0 {
				raw = first // a true retry; otherwise a duplicate_id_conflict
			}
		}
		src.Append(mkEnv(app, recv, string(raw)))
	}
}

// snapshot is everything a query can see of an index.
type snapshot struct {
	stats  Stats
	events []string
	errors []string
	byCat  []uint64
}

func takeSnapshot(t *testing.T, ix *Index) snapshot {
	t.Helper()
	var s snapshot
	s.stats = ix.Stats()
	if _, err := ix.Events(context.Background(), EventQuery{}, func(b []byte) error {
		s.events = append(s.events, string(b))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Errors(context.Background(), ErrorQuery{}, func(b []byte) error {
		s.errors = append(s.errors, string(b))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"c0", "c1", "c2"} {
		gs, _ := events(t, ix, EventQuery{Category: c})
		s.byCat = append(s.byCat, seqs(gs)...)
	}
	for _, q := range []EventQuery{{Session: "s1"}, {Session: "s7"}, {Category: "c1", Name: "n2"}} {
		gs, _ := events(t, ix, q)
		s.byCat = append(s.byCat, seqs(gs)...)
	}
	return s
}

func (s snapshot) equal(o snapshot) bool {
	return s.stats == o.stats && slices.Equal(s.events, o.events) && slices.Equal(s.errors, o.errors) && slices.Equal(s.byCat, o.byCat)
}

// TestExactlyOnce_Restart pins invariant 5 across a clean restart: index
// half, close, reopen, index the rest; same result as one go.
func TestExactlyOnce_Restart(t *testing.T) {
	src := newFakeSource()
	mixedLog(src, 3000, 1)

	whole := openTest(t, "", src, func(c *Config) { c.BatchSize = 100 })
	indexAll(t, whole)
	want := takeSnapshot(t, whole)
	if want.stats.Duplicates == 0 || want.stats.Errors == 0 || want.stats.Events == 0 || want.stats.IndexedSeq != 3000 {
		t.Fatalf("fixture does not exercise everything: %+v", want.stats)
	}
	if want.stats.Events+want.stats.Errors+want.stats.Duplicates != 3000 {
		t.Fatalf("stats do not add up: %+v", want.stats)
	}

	dir := t.TempDir()
	half := newFakeSource()
	half.envs = src.envs[:1500:1500]
	ix, err := Open(Config{Dir: dir, Source: half, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	indexAll(t, ix)
	if got := ix.IndexedSeq(); got != 1500 {
		t.Fatalf("indexed %d, want 1500", got)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	re := openTest(t, dir, src, func(c *Config) { c.BatchSize = 100 })
	if got := re.IndexedSeq(); got != 1500 {
		t.Fatalf("reopened at %d, want 1500", got)
	}
	indexAll(t, re)
	if got := takeSnapshot(t, re); !got.equal(want) {
		t.Fatalf("index built in two runs differs from one built in one go:\n got  %+v\n want %+v", got.stats, want.stats)
	}
}

// TestExactlyOnce_Crash pins invariant 5 across crashes, with the index
// writing no WAL. Memtables are small, so Pebble also flushes and compacts
// on its own while the test indexes. After each batch (committed NoSync) a
// crash clone of the file system keeps what was synced and, every other
// time, a random part of what was not (torn sstables, a manifest half
// written). Reopened on the clone, the index must be at a batch boundary
// between the last explicit flush and the crash, and indexing the rest
// must give the same index as one clean run.
func TestExactlyOnce_Crash(t *testing.T) {
	src := newFakeSource()
	mixedLog(src, 1200, 2)
	want := func() snapshot {
		ix := openTest(t, "", src, func(c *Config) { c.BatchSize = 100 })
		indexAll(t, ix)
		return takeSnapshot(t, ix)
	}()

	fs := vfs.NewCrashableMem()
	cfg := Config{Dir: "/idx", FS: fs, Source: src, BatchSize: 100, MemTableSize: 64 << 10}
	ix, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	flushed := uint64(0) // a crash comes back with at least this cursor
	for crashes := 0; ; crashes++ {
		if _, advanced, err := ix.indexBatch(); err != nil {
			t.Fatal(err)
		} else if !advanced {
			if crashes < 12 {
				t.Fatalf("only %d crashes", crashes)
			}
			break
		}
		if crashes%3 == 2 {
			if err := ix.db.Flush(); err != nil {
				t.Fatal(err)
			}
			flushed = ix.IndexedSeq()
		}
		crash := vfs.CrashCloneCfg{}
		if crashes%2 == 1 {
			crash = vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng}
		}
		crashCfg := cfg
		crashCfg.FS = fs.CrashClone(crash)
		re, err := Open(crashCfg)
		if err != nil {
			t.Fatalf("reopen after a crash at %d: %v", ix.IndexedSeq(), err)
		}
		if got := re.IndexedSeq(); got < flushed || got > ix.IndexedSeq() || got%100 != 0 {
			t.Fatalf("crash at %d: reopened at %d, want a batch boundary in [%d, %d]", ix.IndexedSeq(), got, flushed, ix.IndexedSeq())
		}
		indexAll(t, re)
		if got := takeSnapshot(t, re); !got.equal(want) {
			t.Fatalf("after a crash at %d: got %+v, want %+v", ix.IndexedSeq(), got.stats, want.stats)
		}
		if err := re.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDedupe pins invariant 7.
func TestDedupe(t *testing.T) {
	src := newFakeSource()
	ix := openTest(t, "", src, func(c *Config) { c.BatchSize = 3 })
	e := evt{ID: "x-1", Session: "s", Category: "c", Name: "n", Timestamp: baseTime}
	src.Append(
		mkEnv("web", baseTime, e.raw()),                                                                // 1: indexed
		mkEnv("web", baseTime, e.raw()),                                                                // 2: duplicate in the same batch
		mkEnv("mobile", baseTime, e.raw()),                                                             // 3: same id, another app: indexed
		mkEnv("web", baseTime.Add(time.Second), e.raw()),                                               // 4: duplicate in a later batch
		mkEnv("web", baseTime, strings.Replace(e.raw(), `{"k":1}`, `{}`, 1)),                           // 5: same id, another payload: duplicate_id_conflict
		mkEnv("web", baseTime, evt{ID: "bad-1", Session: "s", Category: "c", Name: "n"}.raw()),         // 6: invalid, new id
		mkEnv("web", baseTime, evt{ID: "bad-1", Session: "s", Category: "c", Name: "n"}.raw()),         // 7: its retry
		mkEnv("web", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime}.raw()), // 8: no id
		mkEnv("web", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime}.raw()), // 9: no id, same body: not a duplicate
	)
	indexAll(t, ix)
	gs, _ := events(t, ix, EventQuery{Session: "s"})
	if got := seqs(gs); !slices.Equal(got, []uint64{1, 3, 8, 9}) {
		t.Errorf("indexed %v, want [1 3 8 9]", got)
	}
	recs, _ := errorRecords(t, ix, ErrorQuery{})
	if len(recs) != 2 || recs[0].Seq != 5 || recs[1].Seq != 6 || recs[1].ID != "bad-1" {
		t.Fatalf("errors %+v, want seqs 5 and 6", recs)
	}
	if r := recs[0].Reasons[0]; r.Code != theeye.ReasonDuplicateIDConflict || r.Field != "/id" || !strings.Contains(r.Message, "seq 1") {
		t.Errorf("seq 5: reason %+v, want duplicate_id_conflict naming seq 1", r)
	}
	if st := ix.Stats(); st != (Stats{IndexedSeq: 9, Events: 4, Errors: 2, Duplicates: 3}) {
		t.Errorf("stats %+v", st)
	}
	if gs[0].ID != "x-1" || gs[1].ID != "x-1" || gs[1].App != "mobile" {
		t.Errorf("events %+v", gs[:2])
	}
	// The dedupe value points at the first seq and hashes its raw event.
	v, closer, err := ix.db.Get(appendDedupeKey(nil, "web", "x-1"))
	if err != nil {
		t.Fatal(err)
	}
	seq, _, err := decodeDedupeValue(v)
	closer.Close()
	if err != nil || seq != 1 {
		t.Errorf("dedupe value: seq %d, %v", seq, err)
	}
}

func TestWaitIndexed(t *testing.T) {
	src := newFakeSource()
	ix := openTest(t, "", src)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- ix.Run(ctx) }()

	waited := make(chan error, 1)
	go func() { waited <- ix.WaitIndexed(context.Background(), 3) }()
	src.Append(mkEnv("a", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime}.raw()))
	if err := ix.WaitIndexed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		t.Fatalf("WaitIndexed(3) returned %v at seq %d", err, ix.IndexedSeq())
	default:
	}
	src.Append(
		mkEnv("a", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime}.raw()),
		mkEnv("a", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime}.raw()),
	)
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitIndexed(3) did not return")
	}
	if ix.IndexedSeq() < 3 {
		t.Fatalf("indexed %d", ix.IndexedSeq())
	}
	if err := ix.WaitIndexed(context.Background(), 2); err != nil {
		t.Fatalf("already indexed: %v", err)
	}

	// Timeout.
	tctx, tcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer tcancel()
	if err := ix.WaitIndexed(tctx, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitIndexed(100) = %v, want deadline exceeded", err)
	}

	// Run returns nil on cancellation.
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestRun_StopsOnClose(t *testing.T) {
	src := newFakeSource()
	ix, err := Open(Config{Dir: t.TempDir(), Source: src})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- ix.Run(context.Background()) }()
	waited := make(chan error, 1)
	go func() { waited <- ix.WaitIndexed(context.Background(), 1) }()
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan error{runErr, waited} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("got %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("did not return after Close")
		}
	}
	if _, err := ix.Events(context.Background(), EventQuery{}, func([]byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Events after Close: %v", err)
	}
	if err := ix.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCursorAheadOfLog: the log lost an unsynced tail the index had already
// indexed; the indexer waits until the log is past its cursor again, then
// goes on without indexing anything twice.
func TestCursorAheadOfLog(t *testing.T) {
	src := newFakeSource()
	mixedLog(src, 50, 3)
	ix := openTest(t, "", src)
	indexAll(t, ix)
	before := ix.Stats()
	full := append([]theeye.Envelope(nil), src.envs...)
	src.Truncate(40)
	if n, err := ix.IndexOnce(context.Background()); err != nil || n != 0 || ix.IndexedSeq() != 50 {
		t.Fatalf("IndexOnce behind the cursor: %d, %v, at %d", n, err, ix.IndexedSeq())
	}
	src.Append(full[40:48]...)
	if n, _ := ix.IndexOnce(context.Background()); n != 0 {
		t.Fatalf("indexed %d while the log is still behind", n)
	}
	src.Append(full[48:]...)
	src.Append(mkEnv("a", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime}.raw()))
	if n, err := ix.IndexOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("IndexOnce: %d, %v", n, err)
	}
	if st := ix.Stats(); st.Events != before.Events+1 || st.IndexedSeq != 51 {
		t.Fatalf("stats %+v after %+v", st, before)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	src := newFakeSource()
	dir := t.TempDir()
	ix := openTest(t, dir, src, func(c *Config) { c.Registerer = reg })
	e := evt{ID: "1", Session: "s", Category: "c", Name: "n", Timestamp: baseTime}
	src.Append(
		mkEnv("a", baseTime, e.raw()),
		mkEnv("a", baseTime, e.raw()),
		mkEnv("a", baseTime, `{"session_id":"s"}`),
	)
	indexAll(t, ix)
	src.Append(mkEnv("a", baseTime, e.raw())) // not indexed yet: lag 1
	for name, want := range map[string]float64{
		"theeye_indexer_indexed_seq":      3,
		"theeye_indexer_events_total":     1,
		"theeye_indexer_duplicates_total": 1,
		"theeye_indexer_lag":              1,
	} {
		if got := gatherValue(t, reg, name, ""); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// Missing category, name, data and timestamp: four missing_field.
	if got := gatherValue(t, reg, "theeye_indexer_errors_total", theeye.ReasonMissingField); got != 4 {
		t.Errorf("errors_total{reason=missing_field} = %v, want 4", got)
	}
	if got := gatherValue(t, reg, "theeye_indexer_batch_seconds", ""); got != 1 {
		t.Errorf("batch_seconds count = %v, want 1", got)
	}
	// Close unregisters, so a reopened index can register again.
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir, src, func(c *Config) { c.Registerer = reg })
}

func gatherValue(t *testing.T, g prometheus.Gatherer, name, reason string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason != "" {
				match := false
				for _, l := range m.GetLabel() {
					match = match || (l.GetName() == "reason" && l.GetValue() == reason)
				}
				if !match {
					continue
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("metric %s{reason=%q} not found", name, reason)
	return 0
}

// TestSourceErrors: a failing or misbehaving log stops the batch without
// moving the cursor.
func TestSourceErrors(t *testing.T) {
	src := &badSource{fakeSource: newFakeSource()}
	src.Append(mkEnv("a", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime}.raw()))
	ix := openTest(t, "", src)
	src.fail = errors.New("disk on fire")
	if _, err := ix.IndexOnce(context.Background()); !errors.Is(err, src.fail) {
		t.Fatalf("got %v", err)
	}
	src.fail = nil
	src.wrongSeq = true
	if _, err := ix.IndexOnce(context.Background()); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("got %v", err)
	}
	if ix.IndexedSeq() != 0 || ix.Stats().Events != 0 {
		t.Fatalf("cursor moved: %+v", ix.Stats())
	}
	src.wrongSeq = false
	indexAll(t, ix)
	if ix.Stats().Events != 1 {
		t.Fatalf("stats %+v", ix.Stats())
	}
}

type badSource struct {
	*fakeSource
	fail     error
	wrongSeq bool
}

func (s *badSource) ReadFrom(from uint64, max int, fn func(uint64, *theeye.Envelope) error) (int, error) {
	if s.fail != nil {
		return 0, s.fail
	}
	if s.wrongSeq {
		return s.fakeSource.ReadFrom(from, max, func(seq uint64, env *theeye.Envelope) error { return fn(seq+100, env) })
	}
	return s.fakeSource.ReadFrom(from, max, fn)
}

// TestSourceGap: a window the log does not hold, below its last seq, is
// skipped (the log is the source of truth), not waited on forever.
func TestSourceGap(t *testing.T) {
	src := &gapSource{fakeSource: newFakeSource(), missing: map[uint64]bool{}}
	for i := range 10 {
		src.Append(mkEnv("a", baseTime, evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime.Add(time.Duration(i))}.raw()))
	}
	for seq := uint64(1); seq <= 5; seq++ {
		src.missing[seq] = true
	}
	src.missing[8] = true
	ix := openTest(t, "", src, func(c *Config) { c.BatchSize = 4 })
	indexAll(t, ix)
	gs, _ := events(t, ix, EventQuery{})
	if got := seqs(gs); !slices.Equal(got, []uint64{6, 7, 9, 10}) || ix.IndexedSeq() != 10 {
		t.Fatalf("indexed %v up to %d", got, ix.IndexedSeq())
	}
}

type gapSource struct {
	*fakeSource
	missing map[uint64]bool
}

func (s *gapSource) ReadFrom(from uint64, max int, fn func(uint64, *theeye.Envelope) error) (int, error) {
	n := 0
	_, err := s.fakeSource.ReadFrom(from, max, func(seq uint64, env *theeye.Envelope) error {
		if s.missing[seq] {
			return nil
		}
		n++
		return fn(seq, env)
	})
	return n, err
}
