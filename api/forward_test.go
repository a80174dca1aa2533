package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// followerNode is a follower whose leader is at leaderURL.
type followerNode struct {
	keyNode
	leaderURL string
}

func (n *followerNode) IsLeader() bool                { return false }
func (n *followerNode) Leader() (id, httpAddr string) { return "n2", n.leaderURL }

// TestFollowerKeepsLeadersSlowDown: once the leader answers a forwarded
// batch with 429 overloaded, the follower gives that answer itself, with
// a Retry-After counting down, and sends nothing more to the leader until
// it lapses; a key's own 429 rate_limited is relayed but never kept.
func TestFollowerKeepsLeadersSlowDown(t *testing.T) {
	var calls atomic.Int64
	var answer atomic.Value
	answer.Store("overloaded")
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch answer.Load() {
		case "overloaded":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"code":"overloaded","message":"the cluster is indexing behind"}}`))
		case "rate_limited":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"code":"rate_limited","message":"key over its rate"}}`))
		default:
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"accepted":1}`))
		}
	}))
	defer leader.Close()
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	s := New(Config{Node: &followerNode{leaderURL: leader.URL}, Index: &fakeIndex{}, ClusterKey: "ck", NodeID: "n1",
		Now: clk.now, HTTPClient: leader.Client()})
	post := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/v1/events", strings.NewReader(`[{"session_id":"s","category":"c","name":"n","data":{},"timestamp":"2026-01-01T00:00:00Z"}]`))
		req.Header.Set("Authorization", "Bearer "+fakeAdminSecret)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}
	if rec := post(); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "3" || calls.Load() != 1 {
		t.Fatalf("first batch: %d %q after %d leader calls", rec.Code, rec.Header().Get("Retry-After"), calls.Load())
	}
	clk.t = clk.t.Add(1500 * time.Millisecond)
	rec := post()
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" || !strings.Contains(rec.Body.String(), `"overloaded"`) ||
		rec.Header().Get("X-Eye-Leader") != "n2" {
		t.Fatalf("kept answer: %d %q %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("X-Eye-Leader"), rec.Body)
	}
	if calls.Load() != 1 {
		t.Fatalf("the follower called the overloaded leader again: %d calls", calls.Load())
	}
	// Lapsed: the next batch goes to the leader, which has caught up.
	answer.Store("ok")
	clk.t = clk.t.Add(1500 * time.Millisecond)
	if rec := post(); rec.Code != http.StatusAccepted || calls.Load() != 2 {
		t.Fatalf("after Retry-After: %d after %d leader calls", rec.Code, calls.Load())
	}
	answer.Store("rate_limited")
	for i := range 2 {
		if rec := post(); rec.Code != http.StatusTooManyRequests || calls.Load() != int64(3+i) {
			t.Fatalf("rate_limited %d: %d after %d leader calls, want every one relayed", i, rec.Code, calls.Load())
		}
	}
}
