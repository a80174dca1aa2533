package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// These tests cover pure pieces, and the one behaviour the real server
// cannot be made to show on demand: a 429 with Retry-After.

func TestEncodeEvent(t *testing.T) {
	now := time.Date(2021, 1, 1, 9, 15, 27, 243860000, time.FixedZone("x", 3600))
	ev := Event{SessionID: "s", Category: "c", Name: "n", Data: map[string]any{"html": "<b>"},
		Extra: map[string]any{"z": 1, "a": "b"}}
	b, id, err := ev.encode(nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 26 {
		t.Errorf("id %q is not a ULID", id)
	}
	want := `{"id":"` + id + `","session_id":"s","category":"c","name":"n","data":{"html":"<b>"},"timestamp":"2021-01-01T08:15:27.24386Z","a":"b","z":1}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	ev.ID = "mine"
	ev.Timestamp = now.Add(time.Second)
	ev.Data = json.RawMessage("{ \"k\" :\n 1 }")
	ev.Extra = nil
	b, id, _ = ev.encode(nil, now)
	if id != "mine" || !strings.Contains(string(b), `"data":{"k":1},"timestamp":"2021-01-01T08:15:28.24386Z"}`) {
		t.Errorf("got %s", b)
	}
	for _, k := range []string{"id", "data", "seq", "app", "received_at"} {
		ev.Extra = map[string]any{k: 1}
		if _, _, err := ev.encode(nil, now); err == nil {
			t.Errorf("Extra[%q]: no error", k)
		}
	}
	ev.Extra = nil
	ev.Data = func() {}
	if _, _, err := ev.encode(nil, now); err == nil {
		t.Error("data that does not encode: no error")
	}
}

func TestPrepareRaw(t *testing.T) {
	b, id, err := prepareRaw([]byte(" {\n\"id\": \"x\", \"a\": [1, 2]}\n"))
	if err != nil || id != "x" || string(b) != `{"id":"x","a":[1,2]}` {
		t.Errorf("%s %q %v", b, id, err)
	}
	b, id, err = prepareRaw([]byte(`{"a": 1}`))
	if err != nil || len(id) != 26 || string(b) != `{"id":"`+id+`","a":1}` {
		t.Errorf("%s %q %v", b, id, err)
	}
	b, id, err = prepareRaw([]byte(`{}`))
	if err != nil || string(b) != `{"id":"`+id+`"}` {
		t.Errorf("%s %q %v", b, id, err)
	}
	for _, bad := range []string{``, `[]`, `1`, `{"a":`, `{"a":1} {"b":2}`} {
		if _, _, err := prepareRaw([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestStoredEventJSON(t *testing.T) {
	in := `{"seq":7,"id":"a","app":"shop","session_id":"s","category":"c","name":"n","data":{"x":1},"timestamp":"2021-01-01T09:15:27.24386Z","received_at":"2026-01-01T00:00:00Z","extra":[1],"b":"c"}`
	var e StoredEvent
	if err := json.Unmarshal([]byte(in), &e); err != nil {
		t.Fatal(err)
	}
	if e.Seq != 7 || e.App != "shop" || string(e.Data) != `{"x":1}` || len(e.Extra) != 2 || e.Timestamp.Nanosecond() != 243860000 {
		t.Errorf("%+v", e)
	}
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":7,"id":"a","app":"shop","session_id":"s","category":"c","name":"n","data":{"x":1},"timestamp":"2021-01-01T09:15:27.24386Z","received_at":"2026-01-01T00:00:00Z","b":"c","extra":[1]}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestNormalizeServer(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080":         "http://127.0.0.1:8080",
		"http://eye:8080/":       "http://eye:8080",
		" https://eye.example ":  "https://eye.example",
		"http://eye:8080/prefix": "http://eye:8080/prefix",
	} {
		if got, err := normalizeServer(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "http://", "http://x/?a=b"} {
		if _, err := normalizeServer(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Thu, 01 Jan 2026 00:00:10 GMT": 10 * time.Second,
		"Wed, 31 Dec 2025 23:59:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{cfg: Config{RetryMin: 100 * time.Millisecond, RetryMax: time.Second}}
	for r, hi := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		hi *= time.Millisecond
		for range 50 {
			if d := c.backoff(r); d < hi/2 || d > hi {
				t.Fatalf("round %d: %s, want in [%s, %s]", r, d, hi/2, hi)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{Servers: []string{"ftp://x"}}); err == nil {
		t.Error("ftp server: no error")
	}
	if _, err := New(Config{QueueSize: 10, BatchSize: 20}); err == nil {
		t.Error("QueueSize < BatchSize: no error")
	}
	if _, err := New(Config{OnFull: 7}); err == nil {
		t.Error("OnFull 7: no error")
	}
}

// TestRetryAfterHonoured: a 429 is retried on the same server, no sooner
// than its Retry-After, even with a tiny backoff.
func TestRetryAfterHonoured(t *testing.T) {
	var calls atomic.Int64
	var first, gap atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			first.Store(time.Now().UnixNano())
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"code":"rate_limited","message":"slow down"}}`))
			return
		}
		gap.Store(time.Now().UnixNano() - first.Load())
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"accepted":1,"seq":9}`))
	}))
	defer srv.Close()
	c, err := New(Config{Servers: []string{srv.URL}, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	a, err := c.Ingest(context.Background(), []Event{{SessionID: "s", Data: map[string]int{"a": 1}}})
	if err != nil || a.Seq != 9 {
		t.Fatalf("ingest: %+v %v", a, err)
	}
	if d := time.Duration(gap.Load()); d < time.Second {
		t.Errorf("retried after %s, before the Retry-After of 1s", d)
	}
	if st := c.Stats(); st.Retried != 1 || st.Requests != 2 || st.RateLimited != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestSlowDownAnswers: 429 overloaded and 507 insufficient_storage are
// retried on the same server after their Retry-After, and counted apart
// from the key's rate limit.
func TestSlowDownAnswers(t *testing.T) {
	var calls atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("failed over to another server: a 429/507 is the cluster's answer")
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"code":"overloaded","message":"indexing behind"}}`))
		case 2:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusInsufficientStorage)
			w.Write([]byte(`{"error":{"code":"insufficient_storage","message":"disk"}}`))
		default:
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"accepted":1,"seq":3}`))
		}
	}))
	defer srv.Close()
	c, err := New(Config{Servers: []string{srv.URL, other.URL}, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if a, err := c.Ingest(context.Background(), []Event{{SessionID: "s", Data: map[string]int{"a": 1}}}); err != nil || a.Seq != 3 {
		t.Fatalf("ingest: %+v %v", a, err)
	}
	if st := c.Stats(); st.Overloaded != 1 || st.StorageFull != 1 || st.RateLimited != 0 || st.Retried != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestRetriesExhausted: a server that keeps answering 503 gets MaxRetries+1
// attempts, and the caller gets the last *Error.
func TestRetriesExhausted(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"unavailable","message":"no leader"}}`))
	}))
	defer srv.Close()
	c, err := New(Config{Servers: []string{srv.URL}, MaxRetries: 3, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	_, err = c.ClusterStatus(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Code != "unavailable" || e.Status != 503 || !e.Temporary() {
		t.Fatalf("err %v", err)
	}
	if calls.Load() != 4 {
		t.Errorf("%d attempts, want 4", calls.Load())
	}
}
