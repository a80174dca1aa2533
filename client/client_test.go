package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theeye/theeye/client"
)

var t0 = time.Date(2021, 1, 1, 9, 15, 27, 243860000, time.UTC)

// ev returns event i of a session, one second after the previous one.
func ev(session string, i int) client.Event {
	return client.Event{
		ID:        fmt.Sprintf("%s-%03d", session, i),
		SessionID: session,
		Category:  "page interaction",
		Name:      "pageview",
		Data:      map[string]any{"host": "www.example.com", "path": fmt.Sprintf("/p/%d", i)},
		Timestamp: t0.Add(time.Duration(i) * time.Second),
	}
}

// sessionIDs reads a session back (waiting until minSeq is indexed) and
// returns how many times each id is there.
func sessionIDs(t *testing.T, c *client.Client, session string, minSeq uint64) map[string]int {
	t.Helper()
	got := map[string]int{}
	for e, err := range c.SessionEvents(testCtx(t), session, client.Query{MinSeq: minSeq, Wait: 30 * time.Second, Limit: 1000}) {
		if err != nil {
			t.Fatal(err)
		}
		got[e.ID]++
	}
	return got
}

// requireOnce checks that ids 0..n-1 of session are each there exactly once.
func requireOnce(t *testing.T, got map[string]int, session string, n int) {
	t.Helper()
	if len(got) != n {
		t.Errorf("%d distinct ids, want %d", len(got), n)
	}
	for i := range n {
		id := fmt.Sprintf("%s-%03d", session, i)
		if got[id] != 1 {
			t.Errorf("id %s is there %d times, want once", id, got[id])
		}
	}
}

// TestTrackBatches: Track queues, and events leave in batches cut on count,
// on bytes and on the flush interval; Flush waits for them.
func TestTrackBatches(t *testing.T) {
	key := newApp(t, shared)
	admin := adminClient(t, shared)

	t.Run("count", func(t *testing.T) {
		rt := newCountingRT()
		c := newClient(t, client.Config{Key: key, HTTPClient: rt.client(), BatchSize: 100, FlushInterval: time.Hour, MaxInFlight: 2})
		const n = 250
		for i := range n {
			if err := c.Track(testCtx(t), ev(sess(t, "batch-count"), i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Flush(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if got := rt.count("POST /v1/events"); got != 3 {
			t.Errorf("%d Track calls made %d requests, want 3 (100+100+50)", n, got)
		}
		st := c.Stats()
		if st.Sent != n || st.Batches != 3 || st.Failed != 0 || st.Queued != 0 || st.LastSeq == 0 {
			t.Errorf("stats %+v", st)
		}
		requireOnce(t, sessionIDs(t, admin, sess(t, "batch-count"), st.LastSeq), sess(t, "batch-count"), n)
	})

	t.Run("bytes", func(t *testing.T) {
		rt := newCountingRT()
		var mu sync.Mutex
		var sizes []int64
		rt.before = func(r *http.Request) error {
			mu.Lock()
			sizes = append(sizes, r.ContentLength)
			mu.Unlock()
			return nil
		}
		const limit = 2000
		c := newClient(t, client.Config{Key: key, HTTPClient: rt.client(), BatchSize: 1000, BatchBytes: limit, FlushInterval: time.Hour})
		const n = 40 // about 190 bytes each: 7,600 bytes
		for i := range n {
			if err := c.Track(testCtx(t), ev(sess(t, "batch-bytes"), i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Flush(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(sizes) < 4 {
			t.Errorf("%d requests, want at least 4 for %d events under %d bytes each", len(sizes), n, limit)
		}
		for _, s := range sizes {
			if s > limit {
				t.Errorf("a request of %d bytes, over BatchBytes %d", s, limit)
			}
		}
		requireOnce(t, sessionIDs(t, admin, sess(t, "batch-bytes"), c.Stats().LastSeq), sess(t, "batch-bytes"), n)
	})

	t.Run("interval", func(t *testing.T) {
		c := newClient(t, client.Config{Key: key, BatchSize: 1000, FlushInterval: 20 * time.Millisecond})
		for i := range 3 {
			if err := c.Track(testCtx(t), ev(sess(t, "batch-interval"), i)); err != nil {
				t.Fatal(err)
			}
		}
		// No Flush: the interval alone sends the partial batch.
		waitFor(t, 10*time.Second, "the partial batch to be sent", func() error {
			if st := c.Stats(); st.Sent != 3 {
				return fmt.Errorf("stats %+v", st)
			}
			return nil
		})
	})
}

// TestRetryAcrossRestart: the node is killed with SIGKILL and restarted on
// the same ports and data dir while Track keeps going; afterwards every
// event is there exactly once (acknowledged ones survived the kill, the
// batch in flight was retried, and its ids kept a retry from storing it
// twice).
func TestRetryAcrossRestart(t *testing.T) {
	n := startNode(t)
	key := newApp(t, n)
	c := newClient(t, client.Config{Servers: []string{n.URL}, Key: key, BatchSize: 10, FlushInterval: 10 * time.Millisecond,
		MaxRetries: 200, RetryMin: 20 * time.Millisecond, RetryMax: 300 * time.Millisecond, RequestTimeout: 5 * time.Second})
	session := sess(t, "restart")
	var restarted atomic.Bool
	var tracked atomic.Int64
	producerErr := make(chan error, 1)
	go func() {
		// Paced, so that events are tracked before, during and after the
		// outage; it stops 100 events after the restart.
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		after := 0
		for i := 0; after < 100; i++ {
			<-tick.C
			if err := c.Track(context.Background(), ev(session, i)); err != nil {
				producerErr <- err
				return
			}
			tracked.Add(1)
			if restarted.Load() {
				after++
			}
		}
		producerErr <- nil
	}()
	waitFor(t, 30*time.Second, "50 events acknowledged", func() error {
		if st := c.Stats(); st.Sent < 50 {
			return fmt.Errorf("sent %d", st.Sent)
		}
		return nil
	})
	n.Kill9()
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	restarted.Store(true)
	if err := <-producerErr; err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	st := c.Stats()
	total := int(tracked.Load())
	if st.Failed != 0 || st.Sent != uint64(total) {
		t.Fatalf("stats %+v, want %d sent and none failed", st, total)
	}
	if st.Retried == 0 {
		t.Errorf("stats %+v: no retry, yet the node was down", st)
	}
	t.Logf("%d events, stats %+v", total, st)
	requireOnce(t, sessionIDs(t, adminClient(t, n), session, st.LastSeq), session, total)
}

// TestFailover: the first configured server is a closed port; requests go
// on to the second, and stay there.
func TestFailover(t *testing.T) {
	key := newApp(t, shared)
	port, err := freePort() // nothing listens there once freePort returns
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("127.0.0.1:%d", port)
	rt := newCountingRT()
	c := newClient(t, client.Config{Servers: []string{"http://" + dead, shared.URL}, Key: key, HTTPClient: rt.client()})
	a, err := c.Ingest(testCtx(t), []client.Event{ev(sess(t, "failover"), 0), ev(sess(t, "failover"), 1)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Accepted != 2 || len(a.IDs) != 2 {
		t.Fatalf("ack %+v", a)
	}
	if rt.host(dead) != 1 {
		t.Errorf("%d requests to the dead server, want 1", rt.host(dead))
	}
	if _, err := c.Ingest(testCtx(t), []client.Event{ev(sess(t, "failover"), 2)}); err != nil {
		t.Fatal(err)
	}
	if rt.host(dead) != 1 {
		t.Errorf("%d requests to the dead server after a success elsewhere, want still 1", rt.host(dead))
	}
	if st := c.Stats(); st.Retried != 1 || st.Sent != 3 {
		t.Errorf("stats %+v, want 1 retry and 3 sent", st)
	}
	requireOnce(t, sessionIDs(t, adminClient(t, shared), sess(t, "failover"), c.Stats().LastSeq), sess(t, "failover"), 3)
}

// TestIdempotentRetry: the server stores a batch but its answer is lost;
// the client sends it again, and each event is indexed once. Sending the
// same ids again on purpose stores nothing new either.
func TestIdempotentRetry(t *testing.T) {
	key := newApp(t, shared)
	rt := newCountingRT()
	var lost atomic.Bool
	rt.after = func(r *http.Request, resp *http.Response, err error) (*http.Response, error) {
		if err == nil && r.Method == http.MethodPost && resp.StatusCode == http.StatusAccepted && lost.CompareAndSwap(false, true) {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil, errors.New("connection reset (injected after the server answered 202)")
		}
		return resp, err
	}
	c := newClient(t, client.Config{Key: key, HTTPClient: rt.client(), BatchSize: 5, FlushInterval: time.Hour})
	session := sess(t, "idempotent")
	for i := range 5 {
		if err := c.Track(testCtx(t), ev(session, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := rt.count("POST /v1/events"); got != 2 {
		t.Errorf("%d ingest requests, want 2 (the lost answer and the retry)", got)
	}
	if st := c.Stats(); st.Retried != 1 || st.Sent != 5 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	// Once more, on purpose, through Ingest.
	evs := make([]client.Event, 5)
	for i := range evs {
		evs[i] = ev(session, i)
	}
	a, err := c.Ingest(testCtx(t), evs)
	if err != nil {
		t.Fatal(err)
	}
	requireOnce(t, sessionIDs(t, adminClient(t, shared), session, a.Seq), session, 5)
}

// gate holds ingest requests until it is opened.
func gate(rt *countingRT) (open func()) {
	ch := make(chan struct{})
	rt.before = func(r *http.Request) error {
		if r.Method != http.MethodPost {
			return nil
		}
		select {
		case <-ch:
			return nil
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// TestQueueFull: with the server not answering, the queue fills; then
// ReturnError refuses more with ErrQueueFull and Block waits, and neither
// loses an event.
func TestQueueFull(t *testing.T) {
	key := newApp(t, shared)
	admin := adminClient(t, shared)
	cfg := func(rt *countingRT, p client.FullPolicy) client.Config {
		return client.Config{Key: key, HTTPClient: rt.client(), QueueSize: 4, BatchSize: 2, MaxInFlight: 1, FlushInterval: time.Hour, OnFull: p}
	}

	t.Run("error", func(t *testing.T) {
		rt := newCountingRT()
		open := gate(rt)
		defer open()
		c := newClient(t, cfg(rt, client.ReturnError))
		session := sess(t, "full-error")
		for i := range 4 {
			if err := c.Track(testCtx(t), ev(session, i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Track(testCtx(t), ev(session, 4)); !errors.Is(err, client.ErrQueueFull) {
			t.Fatalf("fifth Track: %v, want ErrQueueFull", err)
		}
		if st := c.Stats(); st.Queued != 4 {
			t.Errorf("stats %+v, want 4 queued", st)
		}
		open()
		if err := c.Flush(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if err := c.Track(testCtx(t), ev(session, 4)); err != nil {
			t.Fatalf("Track once there is room: %v", err)
		}
		if err := c.Flush(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if st := c.Stats(); st.Sent != 5 || st.Failed != 0 || st.Queued != 0 {
			t.Errorf("stats %+v", st)
		}
		requireOnce(t, sessionIDs(t, admin, session, c.Stats().LastSeq), session, 5)
	})

	t.Run("block", func(t *testing.T) {
		rt := newCountingRT()
		open := gate(rt)
		defer open()
		c := newClient(t, cfg(rt, client.Block))
		session := sess(t, "full-block")
		for i := range 4 {
			if err := c.Track(testCtx(t), ev(session, i)); err != nil {
				t.Fatal(err)
			}
		}
		short, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
		defer cancel()
		if err := c.Track(short, ev(session, 4)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Track on a full queue: %v, want it to block until its context ends", err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Track(context.Background(), ev(session, 4)) }()
		open()
		if err := <-done; err != nil {
			t.Fatalf("blocked Track: %v", err)
		}
		if err := c.Close(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if st := c.Stats(); st.Sent != 5 || st.Failed != 0 || st.Queued != 0 {
			t.Errorf("stats %+v", st)
		}
		requireOnce(t, sessionIDs(t, admin, session, c.Stats().LastSeq), session, 5)
	})
}

// TestIterators: the iterators follow cursors page after page, in order,
// and stop fetching when the loop stops.
func TestIterators(t *testing.T) {
	key := newApp(t, shared)
	ing := newClient(t, client.Config{Key: key})
	session := sess(t, "iter")
	category := "iter " + appName(t)
	evs := make([]client.Event, 10)
	for i := range evs {
		evs[i] = ev(session, i)
		evs[i].Category = category
		evs[i].Extra = map[string]any{"campaign": "spring", "n": i}
	}
	slices.Reverse(evs) // sent newest first: the session is read back by timestamp
	a, err := ing.Ingest(testCtx(t), evs)
	if err != nil {
		t.Fatal(err)
	}
	rt := newCountingRT()
	c := newClient(t, client.Config{Servers: []string{shared.URL}, Key: adminKey, HTTPClient: rt.client()})
	path := "GET /v1/sessions/" + session + "/events"

	got := collect(t, c.SessionEvents(testCtx(t), session, client.Query{Limit: 3, MinSeq: a.Seq}))
	if len(got) != 10 {
		t.Fatalf("%d events, want 10", len(got))
	}
	for i, e := range got {
		want := ev(session, i)
		if e.ID != want.ID || !e.Timestamp.Equal(want.Timestamp) || e.Category != category || e.Name != "pageview" || e.SessionID != session {
			t.Errorf("event %d: %+v, want id %s at %s", i, e, want.ID, want.Timestamp)
		}
		if e.Seq == 0 || e.App != appName(t) || e.ReceivedAt.IsZero() {
			t.Errorf("event %d: server fields missing: %+v", i, e)
		}
		var d struct{ Path string }
		if err := json.Unmarshal(e.Data, &d); err != nil || d.Path != fmt.Sprintf("/p/%d", i) {
			t.Errorf("event %d data %s", i, e.Data)
		}
		if string(e.Extra["campaign"]) != `"spring"` || string(e.Extra["n"]) != fmt.Sprint(i) {
			t.Errorf("event %d extra %v", i, e.Extra)
		}
	}
	if n := rt.count(path); n != 4 {
		t.Errorf("%d page requests for 10 events 3 at a time, want 4", n)
	}

	desc := collect(t, c.SessionEvents(testCtx(t), session, client.Query{Limit: 3, Desc: true}))
	if len(desc) != 10 || desc[0].ID != got[9].ID || desc[9].ID != got[0].ID {
		t.Errorf("desc: %d events, first %s last %s", len(desc), desc[0].ID, desc[len(desc)-1].ID)
	}

	byCat := collect(t, c.Events(testCtx(t), client.Query{Category: category, Name: "pageview", App: appName(t), Limit: 3,
		From: t0.Add(2 * time.Second), To: t0.Add(8 * time.Second)}))
	if len(byCat) != 6 || byCat[0].ID != got[2].ID || byCat[5].ID != got[7].ID {
		t.Errorf("category in [t0+2s, t0+8s): %d events", len(byCat))
	}

	before := rt.count(path)
	for e, err := range c.SessionEvents(testCtx(t), session, client.Query{Limit: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.ID == got[1].ID {
			break
		}
	}
	if n := rt.count(path) - before; n != 1 {
		t.Errorf("a loop that stopped on the first page fetched %d pages", n)
	}

	page, err := c.SessionEventsPage(testCtx(t), session, client.Query{Limit: 4}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 4 || page.NextCursor == "" || page.IndexedSeq < a.Seq {
		t.Errorf("page: %d items, cursor %q, indexed seq %d", len(page.Items), page.NextCursor, page.IndexedSeq)
	}
}

// TestErrorsQuery: an event from the future is accepted, then listed by
// Errors with its reason.
func TestErrorsQuery(t *testing.T) {
	key := newApp(t, shared)
	c := newClient(t, client.Config{Key: key})
	bad := ev(sess(t, "errors"), 0)
	bad.Timestamp = time.Now().Add(24 * time.Hour)
	a, err := c.Ingest(testCtx(t), []client.Event{bad, ev(sess(t, "errors"), 1)})
	if err != nil {
		t.Fatal(err)
	}
	admin := adminClient(t, shared)
	recs := collect(t, admin.Errors(testCtx(t), client.ErrorQuery{App: appName(t), Reason: "timestamp_in_future", MinSeq: a.Seq}))
	if len(recs) != 1 {
		t.Fatalf("%d error records, want 1", len(recs))
	}
	r := recs[0]
	if r.ID != bad.ID || r.App != appName(t) || len(r.Reasons) == 0 || r.Reasons[0].Code != "timestamp_in_future" || r.Reasons[0].Field != "/timestamp" {
		t.Errorf("record %+v", r)
	}
	if !strings.Contains(string(r.Event), `"session_id":"`+sess(t, "errors")+`"`) {
		t.Errorf("record event %s", r.Event)
	}
}

// TestNonRetryable: refusals (401, 403, 400) come back at once as *Error
// with the server's code, synchronously from Ingest and through Flush and
// OnError for Track; the events of a refused batch are counted as failed.
func TestNonRetryable(t *testing.T) {
	key := newApp(t, shared)

	t.Run("ingest bad key", func(t *testing.T) {
		rt := newCountingRT()
		c := newClient(t, client.Config{Key: "eye_not_a_key", HTTPClient: rt.client()})
		_, err := c.Ingest(testCtx(t), []client.Event{ev(sess(t, "bad-key"), 0)})
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 401 || e.Code != "unauthorized" || e.Message == "" {
			t.Fatalf("err %v, want a 401 unauthorized *client.Error", err)
		}
		if n := rt.count("POST /v1/events"); n != 1 {
			t.Errorf("%d requests, want 1: a 401 is not retried", n)
		}
		if st := c.Stats(); st.Retried != 0 || st.Sent != 0 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("track bad key", func(t *testing.T) {
		var reported []error
		var mu sync.Mutex
		c := newClient(t, client.Config{Key: "eye_not_a_key", BatchSize: 10, OnError: func(err error) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
		}})
		for i := range 3 {
			if err := c.Track(testCtx(t), ev(sess(t, "bad-key"), i)); err != nil {
				t.Fatal(err)
			}
		}
		err := c.Flush(testCtx(t))
		var be *client.BatchError
		var e *client.Error
		if !errors.As(err, &be) || len(be.IDs) != 3 || len(be.Events) != 3 || !errors.As(err, &e) || e.Status != 401 {
			t.Fatalf("flush: %v, want a *BatchError of 3 events wrapping a 401", err)
		}
		if be.IDs[0] != sess(t, "bad-key")+"-000" || !strings.Contains(string(be.Events[2]), `"id":"`+sess(t, "bad-key")+`-002"`) {
			t.Errorf("batch error ids %v events %s", be.IDs, be.Events[2])
		}
		mu.Lock()
		if len(reported) != 1 || !errors.As(reported[0], &be) {
			t.Errorf("OnError got %v, want the one batch error", reported)
		}
		mu.Unlock()
		if st := c.Stats(); st.Failed != 3 || st.Sent != 0 || st.Queued != 0 {
			t.Errorf("stats %+v", st)
		}
		if err := c.Flush(testCtx(t)); err != nil {
			t.Errorf("a second Flush returned %v: errors are returned once", err)
		}
	})

	t.Run("forbidden", func(t *testing.T) {
		c := newClient(t, client.Config{Key: key})
		_, err := c.EventsPage(testCtx(t), client.Query{}, "")
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 403 || e.Code != "forbidden" {
			t.Fatalf("query with an ingest key: %v, want 403 forbidden", err)
		}
	})

	t.Run("bad parameter", func(t *testing.T) {
		c := adminClient(t, shared)
		_, err := c.EventsPage(testCtx(t), client.Query{Name: "pageview"}, "")
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 400 || e.Code != "invalid_parameter" || e.Details["parameter"] != "name" {
			t.Fatalf("name without category: %v, want 400 invalid_parameter on name", err)
		}
	})

	t.Run("not an object", func(t *testing.T) {
		c := newClient(t, client.Config{Key: key})
		if err := c.TrackRaw(testCtx(t), json.RawMessage(`[1]`)); err == nil {
			t.Fatal("TrackRaw of an array: no error")
		}
		if err := c.Track(testCtx(t), client.Event{SessionID: "x", Extra: map[string]any{"seq": 1}}); err == nil {
			t.Fatal("Track with a reserved Extra field: no error")
		}
	})
}

// TestTrackRaw: raw events are sent as they are, with an id added when
// missing, and a brief-style timestamp left for the server to read.
func TestTrackRaw(t *testing.T) {
	key := newApp(t, shared)
	c := newClient(t, client.Config{Key: key})
	session := sess(t, "raw")
	raws := []string{
		`{"id": "raw-000", "session_id": "` + session + `", "category": "form interaction", "name": "submit",
		  "data": {"form": {"first_name": "John"}}, "timestamp": "2021-01-01 09:15:27.243860"}`,
		`{"session_id":"` + session + `","category":"page interaction","name":"pageview","data":{"path":"/"},"timestamp":"2021-01-01T09:15:28Z","ab":"b"}`,
	}
	for _, r := range raws {
		if err := c.TrackRaw(testCtx(t), json.RawMessage(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	got := collect(t, adminClient(t, shared).SessionEvents(testCtx(t), session, client.Query{MinSeq: c.Stats().LastSeq}))
	if len(got) != 2 || got[0].ID != "raw-000" || !got[0].Timestamp.Equal(t0) || got[1].ID == "" || string(got[1].Extra["ab"]) != `"b"` {
		t.Fatalf("got %+v", got)
	}
}

// TestCloseDrains: Close sends what is queued; after it, Track is refused.
func TestCloseDrains(t *testing.T) {
	key := newApp(t, shared)
	c, err := client.New(client.Config{Servers: []string{shared.URL}, Key: key, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if err := c.Track(testCtx(t), ev(sess(t, "close"), i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Sent != 7 || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
	if err := c.Track(testCtx(t), ev(sess(t, "close"), 7)); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Track after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(testCtx(t)); !errors.Is(err, client.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	requireOnce(t, sessionIDs(t, adminClient(t, shared), sess(t, "close"), c.Stats().LastSeq), sess(t, "close"), 7)
}

// TestCloseGivesUp: when Close's context ends before the queue drains (the
// only server is down), the batches left fail, counted and reported.
func TestCloseGivesUp(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	var reported atomic.Int64
	c, err := client.New(client.Config{Servers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, Key: "k", BatchSize: 2,
		MaxRetries: 1000, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		OnError: func(error) { reported.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := c.Track(testCtx(t), ev(sess(t, "give-up"), i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	err = c.Close(ctx)
	var be *client.BatchError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &be) {
		t.Fatalf("close: %v, want the deadline and the batch errors", err)
	}
	if st := c.Stats(); st.Failed != 5 || st.Sent != 0 || st.Queued != 0 || reported.Load() != 3 {
		t.Errorf("stats %+v, %d reported; want 5 failed in 3 batches", st, reported.Load())
	}
}
