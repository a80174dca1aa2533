package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/theeye/theeye"
)

// statsLog appends n events whose timestamps spread over four days around
// baseTime, some on bucket edges and some before 1970, with duplicates and
// invalid events among them, in 10 sessions and 3 x 2 types (one with a
// NUL and a quote in its name).
func statsLog(src *fakeSource, n int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 11))
	names := []string{"view", "click \"x\"\x00y"}
	var sent []string // events with a client id, for retries
	for i := range n {
		e := evt{
			Session:   fmt.Sprintf("s%d", r.IntN(10)),
			Category:  fmt.Sprintf("c%d", r.IntN(3)),
			Name:      names[r.IntN(2)],
			Timestamp: baseTime.Add(-time.Duration(r.Int64N(int64(96 * time.Hour)))),
		}
		switch r.IntN(20) {
		case 0:
			e.Timestamp = baseTime.Truncate(24 * time.Hour).Add(-time.Duration(r.IntN(3)) * time.Minute) // on an edge
		case 1:
			e.Timestamp = time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC).Add(-time.Duration(r.IntN(3)) * time.Hour)
		case 2:
			e.Timestamp = baseTime.Add(time.Hour) // in the future: invalid
		case 3:
			e.ID = fmt.Sprintf("id-%d", i)
			sent = append(sent, e.raw())
		case 4:
			e.ID = fmt.Sprintf("id-%d", r.IntN(i+1)) // maybe a reuse of an id for another event: a conflict
		}
		raw := e.raw()
		if len(sent) > 0 && r.IntN(20) == 0 {
			raw = sent[r.IntN(len(sent))] // a retry: a duplicate
		}
		src.Append(mkEnv("a", baseTime.Add(time.Duration(i)*time.Millisecond), raw))
	}
}

// statsModel counts evs as GET /v1/stats must, computed another way: by
// time.Truncate (UTC days are whole multiples of 24 h since year 1).
func statsModel(evs []got, q StatsQuery) EventStats {
	out := EventStats{Interval: q.Interval}
	start := q.From.UTC().Truncate(q.Interval)
	for t := start; t.Before(q.To); t = t.Add(q.Interval) {
		out.Buckets = append(out.Buckets, StatsBucket{Start: t})
	}
	counts := map[int]map[[2]string]uint64{}
	for _, e := range evs {
		if q.Category != "" && e.Category != q.Category || q.Name != "" && e.Name != q.Name {
			continue
		}
		ts := e.Timestamp.UTC().Truncate(q.Interval)
		if ts.Before(start) || !ts.Before(q.To) {
			continue
		}
		i := int(ts.Sub(start) / q.Interval)
		if counts[i] == nil {
			counts[i] = map[[2]string]uint64{}
		}
		counts[i][[2]string{e.Category, e.Name}]++
	}
	for i, m := range counts {
		b := &out.Buckets[i]
		for t, c := range m {
			b.Total += c
			b.ByType = append(b.ByType, TypeCount{Category: t[0], Name: t[1], Count: c})
		}
		slices.SortFunc(b.ByType, func(x, y TypeCount) int {
			if c := strings.Compare(x.Category, y.Category); c != 0 {
				return c
			}
			return strings.Compare(x.Name, y.Name)
		})
	}
	return out
}

// sameStats compares two answers but for IndexedSeq.
func sameStats(a, b EventStats) error {
	if a.Interval != b.Interval || len(a.Buckets) != len(b.Buckets) {
		return fmt.Errorf("interval %s with %d buckets, want %s with %d", a.Interval, len(a.Buckets), b.Interval, len(b.Buckets))
	}
	for i := range a.Buckets {
		x, y := a.Buckets[i], b.Buckets[i]
		if !x.Start.Equal(y.Start) || x.Total != y.Total || !slices.Equal(x.ByType, y.ByType) {
			return fmt.Errorf("bucket %d: %v %d %v, want %v %d %v", i, x.Start, x.Total, x.ByType, y.Start, y.Total, y.ByType)
		}
	}
	return nil
}

// statsQueries are the queries the tests check against the model: every
// interval over the whole log, filters, and ranges that start and end
// inside buckets.
func statsQueries() []StatsQuery {
	from, to := time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), baseTime.Add(2*time.Hour)
	return []StatsQuery{
		{Interval: 24 * time.Hour, From: baseTime.Add(-6 * 24 * time.Hour), To: to},
		{Interval: 24 * time.Hour, From: from.Add(-3 * 24 * time.Hour), To: from.Add(3 * 24 * time.Hour)},
		{Interval: time.Hour, From: baseTime.Add(-100 * time.Hour), To: to},
		{Interval: time.Hour, From: from.Add(20 * time.Hour), To: from.Add(25*time.Hour + time.Second)},
		{Interval: time.Minute, From: baseTime.Add(-150 * time.Hour).Add(17 * time.Second), To: baseTime.Add(-16 * time.Hour).Add(time.Nanosecond)},
		{Interval: time.Hour, From: baseTime.Add(-100 * time.Hour), To: to, Category: "c1"},
		{Interval: time.Minute, From: baseTime.Add(-30 * time.Hour), To: to, Category: "c2", Name: "click \"x\"\x00y"},
		{Interval: 24 * time.Hour, From: baseTime.Add(-6 * 24 * time.Hour), To: to, Category: "c0", Name: "view"},
		{Interval: time.Hour, From: baseTime.Add(-100 * time.Hour), To: to, Category: "none"},
	}
}

// checkStats requires every query of statsQueries to answer what the model
// computes from the events the index returns.
func checkStats(t *testing.T, ix *Index, what string) {
	t.Helper()
	evs, _ := events(t, ix, EventQuery{})
	for _, q := range statsQueries() {
		st, err := ix.EventStats(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: EventStats(%+v): %v", what, q, err)
		}
		if err := sameStats(st, statsModel(evs, q)); err != nil {
			t.Fatalf("%s: EventStats(%+v): %v", what, q, err)
		}
		if st.IndexedSeq != ix.IndexedSeq() {
			t.Fatalf("%s: answer at seq %d, index at %d", what, st.IndexedSeq, ix.IndexedSeq())
		}
	}
}

// errorLog fails t on any Error record (an event count below zero is one).
type errorLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *errorLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelError }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, r.Message)
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func (l *errorLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		t.Fatalf("errors logged: %q", l.errs)
	}
}

func TestStats_AfterIndexing(t *testing.T) {
	src := newFakeSource()
	statsLog(src, 3000, 1)
	el := &errorLog{}
	ix := openTest(t, "", src, func(c *Config) { c.BatchSize = 128; c.Logger = slog.New(el) })
	checkStats(t, ix, "empty")
	indexAll(t, ix)
	if st := ix.Stats(); st.Events < 2000 || st.Errors == 0 || st.Duplicates == 0 {
		t.Fatalf("fixture does not exercise enough: %+v", st)
	}
	checkStats(t, ix, "indexed")
	// Dense: every bucket of the range, the empty ones too.
	st, err := ix.EventStats(context.Background(), StatsQuery{Interval: time.Minute, From: baseTime.Add(time.Minute), To: baseTime.Add(5 * time.Minute)})
	if err != nil || len(st.Buckets) != 4 || st.Buckets[0].Total != 0 || st.Buckets[0].ByType != nil {
		t.Fatalf("an empty range: %+v, %v", st, err)
	}
	el.check(t)
}

// TestStats_Crash: the counts commit with the cursor. After each batch
// (NoSync, and no WAL), a crash clone keeps what was synced and, every
// other time, a random part of what was not; reopened on it and indexed
// to the end, the counts are those of one clean run.
func TestStats_Crash(t *testing.T) {
	src := newFakeSource()
	statsLog(src, 1200, 2)
	fs := vfs.NewCrashableMem()
	cfg := Config{Dir: "/idx", FS: fs, Source: src, BatchSize: 100, MemTableSize: 64 << 10}
	ix, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	rng := rand.New(rand.NewPCG(3, 4))
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
		// What survived: counts and cursor together.
		checkStats(t, re, fmt.Sprintf("crash at %d, reopened at %d", ix.IndexedSeq(), re.IndexedSeq()))
		indexAll(t, re)
		checkStats(t, re, fmt.Sprintf("crash at %d, indexed again", ix.IndexedSeq()))
		if err := re.Close(); err != nil {
			t.Fatal(err)
		}
	}
	checkStats(t, ix, "the run that never crashed")
}

// TestStats_Erasure: erasing a session takes its events from the counts,
// in the batches that delete their keys, and a purge after it does not
// take them again.
func TestStats_Erasure(t *testing.T) {
	src, reg := newFakeSource(), newFakeRegistry()
	statsLog(src, 3000, 3)
	el := &errorLog{}
	ix := openTest(t, "", src, func(c *Config) { c.Rules = reg; c.BatchSize = 256; c.Logger = slog.New(el) })
	indexAll(t, ix)
	before := ix.Stats().Events
	for id, session := range []string{"s3", "s7"} {
		for {
			done, err := ix.EraseSessionKeys(uint64(id+1), session, src.LastSeq())
			if err != nil {
				t.Fatal(err)
			}
			if done {
				break
			}
		}
		if gs, _ := events(t, ix, EventQuery{Session: session}); len(gs) != 0 {
			t.Fatalf("%d events of %s left", len(gs), session)
		}
		checkStats(t, ix, "after erasing "+session)
	}
	if ix.Stats().Events >= before-300 {
		t.Fatalf("the erasures took %d of %d events", before-ix.Stats().Events, before)
	}
	// Retention then cuts through erased and kept events alike.
	reg.mu.Lock()
	reg.retainFrom = src.LastSeq() / 2
	reg.mu.Unlock()
	indexAll(t, ix)
	if ix.PurgedBelow() != src.LastSeq()/2 {
		t.Fatalf("purged below %d, want %d", ix.PurgedBelow(), src.LastSeq()/2)
	}
	checkStats(t, ix, "after erasures and a purge")
	el.check(t)
}

// TestStats_Purge: retention takes the expired events from the counts as
// the purge deletes their keys; once it is done the counts are those of
// the events queries return.
func TestStats_Purge(t *testing.T) {
	src, reg := newFakeSource(), newFakeRegistry()
	statsLog(src, 6000, 4)
	el := &errorLog{}
	ix := openTest(t, "", src, func(c *Config) { c.Rules = reg; c.Logger = slog.New(el) })
	indexAll(t, ix)
	for _, cut := range []uint64{1000, 1001, 4500, src.LastSeq() + 1} {
		reg.mu.Lock()
		reg.retainFrom = cut
		reg.mu.Unlock()
		indexAll(t, ix) // purges in chunks of purgeChunk
		if ix.PurgedBelow() != min(cut, src.LastSeq()+1) {
			t.Fatalf("cut %d: purged below %d", cut, ix.PurgedBelow())
		}
		checkStats(t, ix, fmt.Sprintf("cut at %d", cut))
	}
	st, err := ix.EventStats(context.Background(), statsQueries()[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range st.Buckets {
		if b.Total != 0 {
			t.Fatalf("everything expired, yet %v counts %d", b.Start, b.Total)
		}
	}
	// A count that came to zero is deleted, not kept as a zero.
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: []byte{ksRollup}, UpperBound: []byte{ksRollup + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if it.First() {
		t.Fatalf("a u key is left: %q", it.Key())
	}
	el.check(t)
}

// TestStats_Revalidation: failures that a fixed schema lets through are
// counted when the revalidation indexes them, at their own timestamps.
func TestStats_Revalidation(t *testing.T) {
	src, reg := newFakeSource(), newFakeRegistry()
	ix := openWithSchemas(t, src, reg, false)
	reg.put("form interaction", "submit", `{"required":["page"]}`, 0) // too strict
	for i := range 50 {
		ts := baseTime.Add(-time.Duration(i) * 7 * time.Minute)
		src.Append(mkEnv("web", baseTime, evt{Session: "s", Category: "form interaction", Name: "submit", Timestamp: ts,
			Data: `{"form":{"first_name":"John"}}`}.raw()))
		src.Append(mkEnv("web", baseTime, evt{Session: "s", Category: "page interaction", Name: "pageview", Timestamp: ts}.raw()))
	}
	indexAll(t, ix)
	if st := ix.Stats(); st.Errors != 50 || st.Events != 50 {
		t.Fatalf("stats %+v", st)
	}
	checkStats(t, ix, "before the revalidation")
	reg.put("form interaction", "submit", formSchema, src.LastSeq())
	rv := reg.revalidate(theeye.Revalidation{}, src.LastSeq())
	indexAll(t, ix)
	if res, err := ix.WaitRevalidation(context.Background(), rv.ID); err != nil || res.Accepted != 50 {
		t.Fatalf("revalidation %+v, %v", res, err)
	}
	checkStats(t, ix, "after the revalidation")
	st, err := ix.EventStats(context.Background(), StatsQuery{Interval: 24 * time.Hour, From: baseTime.Add(-24 * time.Hour), To: baseTime.Add(time.Hour), Category: "form interaction"})
	if err != nil {
		t.Fatal(err)
	}
	total := uint64(0)
	for _, b := range st.Buckets {
		total += b.Total
	}
	if total != 50 {
		t.Fatalf("%d form submits counted, want 50", total)
	}
}

func TestStats_RejectsBadQueries(t *testing.T) {
	ix := openTest(t, "", newFakeSource())
	t0 := baseTime
	for _, c := range []struct {
		q     StatsQuery
		param string
	}{
		{StatsQuery{Interval: 2 * time.Hour, From: t0, To: t0.Add(time.Hour)}, "interval"},
		{StatsQuery{Interval: time.Hour, To: t0}, "from"},
		{StatsQuery{Interval: time.Hour, From: t0}, "from"},
		{StatsQuery{Interval: time.Hour, From: t0, To: t0}, "to"},
		{StatsQuery{Interval: time.Hour, From: t0, To: t0.Add(-time.Second)}, "to"},
		{StatsQuery{Interval: time.Hour, From: t0, To: t0.Add(time.Hour), Name: "n"}, "name"},
		{StatsQuery{Interval: time.Minute, From: t0, To: t0.Add(MaxStatsBuckets*time.Minute + time.Second)}, "to"},
		{StatsQuery{Interval: 24 * time.Hour, From: time.Unix(0, -1<<63), To: time.Unix(0, 1<<63-1)}, "to"},
	} {
		_, err := ix.EventStats(context.Background(), c.q)
		var e *theeye.Error
		if !errors.As(err, &e) || e.Code != theeye.EInvalidParam || e.Details["parameter"] != c.param {
			t.Errorf("%+v: %v, want invalid_param naming %s", c.q, err, c.param)
		}
	}
	// The most buckets one answer may hold is fine, from and to inside them.
	st, err := ix.EventStats(context.Background(), StatsQuery{Interval: time.Minute, From: t0.Add(time.Second), To: t0.Add((MaxStatsBuckets - 1) * time.Minute).Add(time.Second)})
	if err != nil || len(st.Buckets) != MaxStatsBuckets {
		t.Fatalf("%d buckets, %v", len(st.Buckets), err)
	}
	// The edges of what timestamps can be.
	for _, iv := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
		lo, hi := time.Unix(0, -1<<63).UTC(), time.Unix(0, 1<<63-1).UTC()
		if _, err := ix.EventStats(context.Background(), StatsQuery{Interval: iv, From: lo, To: lo.Add(time.Minute)}); err != nil {
			t.Errorf("%s at the first timestamp: %v", iv, err)
		}
		if _, err := ix.EventStats(context.Background(), StatsQuery{Interval: iv, From: hi.Add(-time.Minute), To: hi}); err != nil {
			t.Errorf("%s at the last timestamp: %v", iv, err)
		}
	}
}

// TestStats_JSON: the answer renders as API.md's shape, names escaped.
func TestStats_JSON(t *testing.T) {
	src := newFakeSource()
	statsLog(src, 500, 5)
	ix := openTest(t, "", src)
	indexAll(t, ix)
	for _, q := range statsQueries() {
		st, err := ix.EventStats(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			Interval string `json:"interval"`
			Buckets  []struct {
				Start  time.Time   `json:"start"`
				Total  uint64      `json:"total"`
				ByType []TypeCount `json:"by_type"`
			} `json:"buckets"`
		}
		b := st.AppendJSON(nil)
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		name := map[time.Duration]string{time.Minute: "1m", time.Hour: "1h", 24 * time.Hour: "1d"}[q.Interval]
		if back.Interval != name || len(back.Buckets) != len(st.Buckets) {
			t.Fatalf("interval %q, %d buckets", back.Interval, len(back.Buckets))
		}
		for i, bk := range back.Buckets {
			want := st.Buckets[i]
			if !bk.Start.Equal(want.Start) || bk.Total != want.Total || bk.ByType == nil || !slices.Equal(bk.ByType, want.ByType) {
				t.Fatalf("bucket %d: %+v, want %+v", i, bk, want)
			}
		}
	}
}

func TestRollupKey(t *testing.T) {
	for _, c := range []struct {
		start          int64
		category, name string
	}{{0, "", ""}, {-86400, "a\x00b", "\x00"}, {1 << 40, "page interaction", "cta click"}} {
		k := appendRollupKey(nil, 'h', c.start, c.category, c.name)
		iv, start, typ, err := decodeRollupKey(k)
		if err != nil || iv != 'h' || start != c.start {
			t.Fatalf("%+v: %c %d %v", c, iv, start, err)
		}
		cat, name, err := decodeRollupType(typ)
		if err != nil || cat != c.category || name != c.name {
			t.Fatalf("%+v: %q %q %v", c, cat, name, err)
		}
		for i := 0; i < len(k); i++ {
			if _, _, _, err := decodeRollupKey(k[:i]); err == nil {
				t.Fatalf("%+v: a truncated key %q decodes", c, k[:i])
			}
		}
		if _, _, _, err := decodeRollupKey(append(k, 'x')); err == nil {
			t.Fatalf("%+v: trailing bytes decode", c)
		}
	}
	if a, b := appendRollupKey(nil, 'm', -60, "z", "z"), appendRollupKey(nil, 'm', 0, "a", "a"); string(a) >= string(b) {
		t.Fatal("an earlier bucket sorts after a later one")
	}
}
