package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/theeye/theeye/raftnode"
)

// fakeNode and fakeIndex answer only what /readyz and /healthz ask; the
// embedded interfaces panic on anything else, so a test that reaches
// further fails loudly.
type fakeNode struct {
	Node
	leader  string
	applied uint64
}

func (f *fakeNode) ID() string                     { return "n1" }
func (f *fakeNode) Leader() (string, string)       { return f.leader, "" }
func (f *fakeNode) AppliedSeq() uint64             { return f.applied }
func (f *fakeNode) Stats() (raftnode.Stats, error) { return raftnode.Stats{State: "Follower"}, nil }
func (f *fakeNode) Healthy() error                 { return nil }
func (f *fakeNode) CatchingUp() error              { return nil }

type fakeIndex struct {
	Index
	indexed uint64
}

func (f *fakeIndex) IndexedSeq() uint64 { return f.indexed }
func (f *fakeIndex) Healthy() error     { return nil }

// TestReadyz: 503 with the reason while no leader is known or while the
// indexer is more than ReadyLag events behind the log; 200 otherwise.
func TestReadyz(t *testing.T) {
	tests := []struct {
		name           string
		leader         string
		applied, index uint64
		status         int
		mention        string
	}{
		{"no leader", "", 10, 10, 503, "no leader"},
		{"lagging", "n2", 1000, 100, 503, "900 events behind"},
		{"within the lag", "n2", 1000, 950, 200, "ready"},
		{"caught up", "n1", 7, 7, 200, "ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{Node: &fakeNode{leader: tt.leader, applied: tt.applied}, Index: &fakeIndex{indexed: tt.index}, ReadyLag: 100})
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.mention) {
				t.Fatalf("%d %s, want %d mentioning %q", rec.Code, rec.Body, tt.status, tt.mention)
			}
			if tt.status == 503 && rec.Header().Get("Retry-After") == "" {
				t.Fatal("a 503 without Retry-After")
			}
		})
	}
	rec := httptest.NewRecorder()
	New(Config{Node: &fakeNode{}, Index: &fakeIndex{}}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 {
		t.Fatalf("healthz %d", rec.Code)
	}
}
