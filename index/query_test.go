package index

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye"
)

// modelEvent is what the model of the index knows of a valid event.
type modelEvent struct {
	seq                     uint64
	app, session, cat, name string
	ts                      time.Time
}

// fixture indexes n random events (some invalid) and returns the model of
// the valid ones.
func fixture(t testing.TB, n int, seed uint64) (*Index, []modelEvent) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	src := newFakeSource()
	ix := openTest(t, "", src, func(c *Config) { c.BatchSize = 64 })
	apps := []string{"a1", "a2", "a\x00weird"}
	sessions := []string{"s1", "s2", "s\x00", "s", "e2085be5-9137-4e4e-80b5-f1ffddc25423"}
	cats := []string{"page interaction", "form interaction", "c\x00"}
	names := []string{"pageview", "click", "n\x00"}
	var model []modelEvent
	for i := range n {
		recv := baseTime.Add(time.Duration(i) * time.Millisecond)
		e := evt{
			Session:   sessions[r.IntN(len(sessions))],
			Category:  cats[r.IntN(len(cats))],
			Name:      names[r.IntN(len(names))],
			Timestamp: baseTime.Add(-time.Duration(r.IntN(40)) * time.Second), // many ties
		}
		app := apps[r.IntN(len(apps))]
		raw := e.raw()
		valid := r.IntN(10) != 0
		if !valid {
			raw = strings.Replace(raw, `"category"`, `"categoryX"`, 1)
		}
		seq := src.Append(mkEnv(app, recv, raw))
		if valid {
			model = append(model, modelEvent{seq, app, e.Session, e.Category, e.Name, e.Timestamp})
		}
	}
	indexAll(t, ix)
	return ix, model
}

// expect filters and orders the model as q should.
func expect(model []modelEvent, q EventQuery) []uint64 {
	var out []modelEvent
	for _, m := range model {
		switch {
		case q.Session != "" && m.session != q.Session,
			q.Session == "" && q.Category != "" && m.cat != q.Category,
			q.Session == "" && q.Name != "" && m.name != q.Name,
			q.App != "" && m.app != q.App,
			!q.From.IsZero() && m.ts.Before(q.From),
			!q.To.IsZero() && !m.ts.Before(q.To):
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b modelEvent) int {
		if c := a.ts.Compare(b.ts); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	if q.Desc {
		slices.Reverse(out)
	}
	seqs := []uint64{}
	for _, m := range out {
		seqs = append(seqs, m.seq)
	}
	return seqs
}

// pages runs q page by page with the given limit and returns every seq.
func pages(t testing.TB, ix *Index, q EventQuery, limit int) []uint64 {
	t.Helper()
	q.Limit = limit
	all := []uint64{}
	for range 10000 {
		gs, next := events(t, ix, q)
		if len(gs) > limit {
			t.Fatalf("page of %d events, limit %d", len(gs), limit)
		}
		if next != "" && len(gs) != limit {
			t.Fatalf("short page (%d of %d) with a next cursor", len(gs), limit)
		}
		all = append(all, seqs(gs)...)
		if next == "" {
			return all
		}
		q.Cursor = next
	}
	t.Fatal("paging does not end")
	return nil
}

func TestEvents_Model(t *testing.T) {
	ix, model := fixture(t, 800, 1)
	from, to := baseTime.Add(-30*time.Second), baseTime.Add(-10*time.Second)
	var queries []EventQuery
	for _, base := range []EventQuery{
		{},
		{Session: "s1"},
		{Session: "s\x00"},
		{Session: "e2085be5-9137-4e4e-80b5-f1ffddc25423"},
		{Session: "nope"},
		{Category: "page interaction"},
		{Category: "c\x00"},
		{Category: "page interaction", Name: "click"},
		{Category: "form interaction", Name: "n\x00"},
		{App: "a2"},
		{Category: "page interaction", App: "a\x00weird"},
		{Session: "s2", App: "a1"},
	} {
		for _, rng := range [][2]time.Time{{}, {from, time.Time{}}, {time.Time{}, to}, {from, to}, {to, from}} {
			for _, desc := range []bool{false, true} {
				q := base
				q.From, q.To, q.Desc = rng[0], rng[1], desc
				queries = append(queries, q)
			}
		}
	}
	for _, q := range queries {
		want := expect(model, q)
		gs, next := events(t, ix, q)
		if next != "" {
			t.Errorf("%+v: unlimited scan returned a cursor", q)
		}
		if got := seqs(gs); !slices.Equal(got, want) {
			t.Fatalf("%+v:\n got  %v\n want %v", q, got, want)
		}
		limits := []int{7, 100}
		if len(want) <= 50 {
			limits = append(limits, 1)
		}
		for _, limit := range limits {
			if got := pages(t, ix, q, limit); !slices.Equal(got, want) {
				t.Fatalf("%+v in pages of %d:\n got  %v\n want %v", q, limit, got, want)
			}
		}
	}
}

// TestEvents_SessionSharedAcrossApps pins invariant 8: one session, two
// apps, one order by timestamp, ties by seq.
func TestEvents_SessionSharedAcrossApps(t *testing.T) {
	src := newFakeSource()
	ix := openTest(t, "", src)
	t1, t2 := baseTime.Add(-2*time.Minute), baseTime.Add(-time.Minute)
	src.Append(
		mkEnv("web", baseTime, evt{Session: "S", Category: "c", Name: "n", Timestamp: t2}.raw()),         // 1
		mkEnv("mobile", baseTime, evt{Session: "S", Category: "c", Name: "n", Timestamp: t1}.raw()),      // 2
		mkEnv("web", baseTime, evt{Session: "S", Category: "c", Name: "n", Timestamp: t1}.raw()),         // 3
		mkEnv("mobile", baseTime, evt{Session: "other", Category: "c", Name: "n", Timestamp: t1}.raw()),  // 4
		mkEnv("mobile", baseTime, evt{Session: "S", Category: "c2", Name: "n2", Timestamp: t2}.raw()),    // 5
		mkEnv("web", baseTime, evt{Session: "S", Category: "c", Name: "n", Timestamp: t1.Add(-1)}.raw()), // 6
	)
	indexAll(t, ix)
	gs, _ := events(t, ix, EventQuery{Session: "S"})
	if got, want := seqs(gs), []uint64{6, 2, 3, 1, 5}; !slices.Equal(got, want) {
		t.Fatalf("session S: got %v, want %v", got, want)
	}
	apps := map[string]int{}
	for _, g := range gs {
		apps[g.App]++
		if g.SessionID != "S" {
			t.Errorf("event %d of session %q", g.Seq, g.SessionID)
		}
	}
	if apps["web"] != 3 || apps["mobile"] != 2 {
		t.Errorf("apps: %v", apps)
	}
	gs, _ = events(t, ix, EventQuery{Session: "S", Desc: true})
	if got, want := seqs(gs), []uint64{5, 1, 3, 2, 6}; !slices.Equal(got, want) {
		t.Fatalf("session S desc: got %v, want %v", got, want)
	}
	gs, _ = events(t, ix, EventQuery{Session: "S", App: "mobile"})
	if got, want := seqs(gs), []uint64{2, 5}; !slices.Equal(got, want) {
		t.Fatalf("session S, app mobile: got %v, want %v", got, want)
	}
}

func TestEvents_CategoryNameAndTimeRange(t *testing.T) {
	src := newFakeSource()
	ix := openTest(t, "", src)
	at := func(min int) time.Time { return baseTime.Add(time.Duration(min-60) * time.Minute) }
	src.Append(
		mkEnv("a", baseTime, evt{Session: "s", Category: "page", Name: "view", Timestamp: at(1)}.raw()),   // 1
		mkEnv("a", baseTime, evt{Session: "s", Category: "page", Name: "click", Timestamp: at(2)}.raw()),  // 2
		mkEnv("b", baseTime, evt{Session: "s", Category: "form", Name: "submit", Timestamp: at(3)}.raw()), // 3
		mkEnv("b", baseTime, evt{Session: "s", Category: "page", Name: "view", Timestamp: at(4)}.raw()),   // 4
		mkEnv("a", baseTime, evt{Session: "s", Category: "pagex", Name: "view", Timestamp: at(0)}.raw()),  // 5: a longer category
	)
	indexAll(t, ix)
	f := func(q EventQuery, want ...uint64) {
		t.Helper()
		gs, _ := events(t, ix, q)
		if got := seqs(gs); !slices.Equal(got, want) {
			t.Errorf("%+v: got %v, want %v", q, got, want)
		}
	}
	f(EventQuery{Category: "page"}, 1, 2, 4)
	f(EventQuery{Category: "page", Name: "view"}, 1, 4)
	f(EventQuery{Category: "page", Desc: true}, 4, 2, 1)
	f(EventQuery{Category: "page", From: at(2), To: at(4)}, 2) // [from, to)
	f(EventQuery{From: at(2), To: at(4)}, 2, 3)
	f(EventQuery{From: at(3)}, 3, 4)
	f(EventQuery{To: at(1)}, 5)
	f(EventQuery{App: "b"}, 3, 4)
	f(EventQuery{Category: "page", App: "b"}, 4)
	f(EventQuery{Category: "nope"})
}

func TestEvents_RejectsBadQueries(t *testing.T) {
	ix, _ := fixture(t, 200, 2)
	_, next := events(t, ix, EventQuery{Session: "s1", Limit: 1})
	if next == "" {
		t.Fatal("no cursor")
	}
	_, tnext := events(t, ix, EventQuery{Limit: 1})
	raw, _ := base64.RawURLEncoding.DecodeString(next)
	tampered := append([]byte(nil), raw...)
	tampered[len(tampered)-20] ^= 0x01 // inside the session string or its terminator
	f := func(q EventQuery) {
		t.Helper()
		_, err := ix.Events(context.Background(), q, func([]byte) error { return nil })
		if theeye.ErrorCode(err) != theeye.EInvalidParam {
			t.Errorf("%+v: got %v, want code %s", q, err, theeye.EInvalidParam)
		}
	}
	f(EventQuery{Session: "s2", Cursor: next})                 // another session
	f(EventQuery{Category: "page interaction", Cursor: next})  // another keyspace
	f(EventQuery{Cursor: next})                                // another keyspace
	f(EventQuery{Session: "s1", From: baseTime, Cursor: next}) // outside the time range
	f(EventQuery{Session: "s1", Cursor: tnext})                // a t cursor
	f(EventQuery{Session: "s1", Cursor: "!!!"})
	f(EventQuery{Session: "s1", Cursor: next + "A"})
	f(EventQuery{Session: "s1", Cursor: base64.RawURLEncoding.EncodeToString(tampered)})
	f(EventQuery{Session: "s1", Cursor: base64.RawURLEncoding.EncodeToString(append([]byte{2}, raw[1:]...))}) // version
	f(EventQuery{Name: "click"})
	f(EventQuery{Limit: -1})
	// The same cursor in the same query is fine.
	if _, err := ix.Events(context.Background(), EventQuery{Session: "s1", Limit: 1, Cursor: next}, func([]byte) error { return nil }); err != nil {
		t.Errorf("own cursor rejected: %v", err)
	}
}

func TestEvents_StopsOnCallbackErrorAndContext(t *testing.T) {
	ix, model := fixture(t, 300, 3)
	stop := errors.New("stop")
	calls := 0
	_, err := ix.Events(context.Background(), EventQuery{}, func([]byte) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("got %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if len(model) < ctxCheckKeys {
		t.Fatalf("fixture too small: %d", len(model))
	}
	_, err = ix.Events(ctx, EventQuery{}, func([]byte) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
}

// TestEvents_LongExportCrossesChunks checks that a scan longer than one
// iterator chunk, with a filter, is complete and ordered.
func TestEvents_LongExportCrossesChunks(t *testing.T) {
	ix, model := fixture(t, 2*chunkKeys+500, 4)
	for _, q := range []EventQuery{{}, {Desc: true}, {App: "a1"}, {App: "a1", Desc: true}} {
		gs, _ := events(t, ix, q)
		if got, want := seqs(gs), expect(model, q); !slices.Equal(got, want) {
			t.Fatalf("%+v: %d events, want %d", q, len(got), len(want))
		}
	}
	if got := pages(t, ix, EventQuery{App: "a2"}, 3000); !slices.Equal(got, expect(model, EventQuery{App: "a2"})) {
		t.Fatal("pages across chunks differ")
	}
}

func TestErrors_Query(t *testing.T) {
	src := newFakeSource()
	ix := openTest(t, "", src)
	recv := func(i int) time.Time { return baseTime.Add(time.Duration(i) * time.Second) }
	ok := evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime}
	src.Append(
		mkEnv("a", recv(1), `{"session_id":"s"}`),                                                                  // 1: missing fields
		mkEnv("b", recv(2), ok.raw()),                                                                              // 2: valid
		mkEnv("b", recv(3), strings.Replace(ok.raw(), `"n"`, `7`, 1)),                                              // 3: wrong_type
		mkEnv("a", recv(4), strings.Replace(ok.raw(), `{"k":1}`, `{}`, 1)),                                         // 4: empty_data
		mkEnv("b", recv(0), `{"session_id":"s","category":"c","name":"n","data":{"k":1},"timestamp":"x","seq":1}`), // 5: two reasons, earlier received_at
	)
	indexAll(t, ix)
	f := func(q ErrorQuery, want ...uint64) {
		t.Helper()
		recs, _ := errorRecords(t, ix, q)
		got := []uint64{}
		for _, r := range recs {
			got = append(got, r.Seq)
		}
		if !slices.Equal(got, append([]uint64{}, want...)) {
			t.Errorf("%+v: got %v, want %v", q, got, want)
		}
	}
	f(ErrorQuery{}, 5, 1, 3, 4)
	f(ErrorQuery{Desc: true}, 4, 3, 1, 5)
	f(ErrorQuery{Reason: theeye.ReasonMissingField}, 1)
	f(ErrorQuery{Reason: theeye.ReasonReservedField}, 5)
	f(ErrorQuery{Reason: theeye.ReasonInvalidTimestamp}, 5)
	f(ErrorQuery{App: "a"}, 1, 4)
	f(ErrorQuery{App: "b", Reason: theeye.ReasonWrongType}, 3)
	f(ErrorQuery{From: recv(1), To: recv(4)}, 1, 3)

	// Paging.
	recs, next := errorRecords(t, ix, ErrorQuery{Limit: 3})
	if len(recs) != 3 || next == "" {
		t.Fatalf("first page: %d records, cursor %q", len(recs), next)
	}
	recs, next = errorRecords(t, ix, ErrorQuery{Limit: 3, Cursor: next})
	if len(recs) != 1 || recs[0].Seq != 4 || next != "" {
		t.Fatalf("second page: %+v, cursor %q", recs, next)
	}
	// Bad parameters.
	for _, q := range []ErrorQuery{{Reason: "nope"}, {Cursor: "xx"}, {Limit: -1}} {
		if _, err := ix.Errors(context.Background(), q, func([]byte) error { return nil }); theeye.ErrorCode(err) != theeye.EInvalidParam {
			t.Errorf("%+v: got %v", q, err)
		}
	}
	_, sNext := events(t, ix, EventQuery{Limit: 1, Session: "s"})
	if _, err := ix.Errors(context.Background(), ErrorQuery{Cursor: sNext}, func([]byte) error { return nil }); sNext != "" && theeye.ErrorCode(err) != theeye.EInvalidParam {
		t.Errorf("events cursor accepted by Errors: %v", err)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(ksSession, appendSessionKey(nil, "s1", 5, 6)))
	f.Add(encodeCursor(ksName, appendNameKey(nil, "c", "n\x00", -5, 6)))
	f.Add(encodeCursor(ksTime, appendTimeKey(nil, 1, 2)))
	f.Add(encodeCursor(ksError, appendErrorKey(nil, 1, 2)))
	f.Add(encodeCursor('e', appendUint64([]byte{'e'}, 1))) // layout 2's body keyspace
	f.Add("")
	f.Add("AQ")
	f.Add("AXMAAQ==")
	f.Fuzz(func(t *testing.T, s string) {
		ks, key, err := decodeCursor(s)
		if err != nil {
			if theeye.ErrorCode(err) != theeye.EInvalidParam {
				t.Fatalf("decodeCursor(%q): error %v has code %s", s, err, theeye.ErrorCode(err))
			}
			return
		}
		// Only what encodeCursor produces for a well-formed key decodes.
		if enc := encodeCursor(ks, key); enc != s {
			t.Fatalf("decodeCursor(%q) accepted a cursor that encodes as %q", s, enc)
		}
		if err := validTimeKey(ks, key); err != nil || key[0] != ks {
			t.Fatalf("decodeCursor(%q) accepted key %x in keyspace %q: %v", s, key, ks, err)
		}
		switch ks {
		case ksSession, ksCat, ksName, ksTime, ksError:
		default:
			t.Fatalf("decodeCursor(%q) accepted keyspace %q", s, ks)
		}
	})
}

func ExampleIndex_Events() {
	src := newFakeSource()
	dir, err := os.MkdirTemp("", "theeye-index-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ix, err := Open(Config{Dir: dir, Source: src})
	if err != nil {
		panic(err)
	}
	defer ix.Close()
	recv := time.Date(2021, 1, 1, 9, 15, 30, 0, time.UTC)
	src.Append(
		mkEnv("web", recv, `{"id":"e1","session_id":"S","category":"page","name":"view","data":{"path":"/"},"timestamp":"2021-01-01 09:15:27.24386"}`),
		mkEnv("app", recv, `{"id":"e2","session_id":"S","category":"page","name":"view","data":{"path":"/x"},"timestamp":"2021-01-01 09:15:26"}`),
	)
	if _, err := ix.IndexOnce(context.Background()); err != nil {
		panic(err)
	}
	next, err := ix.Events(context.Background(), EventQuery{Session: "S", Limit: 1}, func(ev []byte) error {
		fmt.Println(string(ev))
		return nil
	})
	if err != nil {
		panic(err)
	}
	_, err = ix.Events(context.Background(), EventQuery{Session: "S", Limit: 1, Cursor: next}, func(ev []byte) error {
		fmt.Println(string(ev))
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// {"seq":2,"id":"e2","app":"app","session_id":"S","category":"page","name":"view","data":{"path":"/x"},"timestamp":"2021-01-01T09:15:26Z","received_at":"2021-01-01T09:15:30Z"}
	// {"seq":1,"id":"e1","app":"web","session_id":"S","category":"page","name":"view","data":{"path":"/"},"timestamp":"2021-01-01T09:15:27.24386Z","received_at":"2021-01-01T09:15:30Z"}
}
