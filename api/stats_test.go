package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/index"
)

// statsIndex answers EventStats with a fixed answer and records the query.
type statsIndex struct {
	fakeIndex
	got index.StatsQuery
}

func (f *statsIndex) EventStats(_ context.Context, q index.StatsQuery) (index.EventStats, error) {
	f.got = q
	start := q.From.Truncate(q.Interval)
	return index.EventStats{Interval: q.Interval, IndexedSeq: 41, Buckets: []index.StatsBucket{
		{Start: start, Total: 3, ByType: []index.TypeCount{{Category: "page interaction", Name: "pageview", Count: 3}}},
		{Start: start.Add(q.Interval)},
	}}, nil
}

func TestParseStats(t *testing.T) {
	now := time.Date(2024, 3, 1, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		query string
		want  index.StatsQuery
		param string // the 400's parameter; "" for a valid query
	}{
		{"", index.StatsQuery{Interval: time.Hour, From: now.Add(-24 * time.Hour), To: now}, ""},
		{"interval=1m", index.StatsQuery{Interval: time.Minute, From: now.Add(-time.Hour), To: now}, ""},
		{"interval=1d&category=c&name=n", index.StatsQuery{Interval: 24 * time.Hour, From: now.Add(-30 * 24 * time.Hour), To: now, Category: "c", Name: "n"}, ""},
		{"from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00%2B02:00", index.StatsQuery{Interval: time.Hour,
			From: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 1, 1, 22, 0, 0, 0, time.UTC)}, ""},
		{"from=1700-01-01T00:00:00Z&to=1700-01-01T00:00:30Z&interval=1m", index.StatsQuery{Interval: time.Minute,
			From: time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(1700, 1, 1, 0, 0, 30, 0, time.UTC)}, ""},
		{"to=1677-09-21T01:00:00Z&interval=1d", index.StatsQuery{Interval: 24 * time.Hour,
			From: time.Unix(0, -1<<63).UTC(), To: time.Date(1677, 9, 21, 1, 0, 0, 0, time.UTC)}, ""},
		{"interval=1w", index.StatsQuery{}, "interval"},
		{"interval=60s", index.StatsQuery{}, "interval"},
		{"from=yesterday", index.StatsQuery{}, "from"},
		{"to=2024-13-01T00:00:00Z", index.StatsQuery{}, "to"},
		{"from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z", index.StatsQuery{}, "to"},
		{"from=2024-01-01T00:00:00Z&to=2024-01-01T00:00:00Z", index.StatsQuery{}, "to"},
		{"from=2030-01-01T00:00:00Z", index.StatsQuery{}, "to"},
		{"name=pageview", index.StatsQuery{}, "name"},
		{"min_seq=-1", index.StatsQuery{}, "min_seq"},
		{"wait=2h", index.StatsQuery{}, "wait"},
	}
	for _, tt := range tests {
		q, _, err := parseStats(httptest.NewRequest(http.MethodGet, "/v1/stats?"+tt.query, nil), now)
		if tt.param != "" {
			var e *theeye.Error
			if !errors.As(err, &e) || e.Code != theeye.EInvalidParam || e.Details["parameter"] != tt.param {
				t.Errorf("%q: %v, want invalid_parameter naming %s", tt.query, err, tt.param)
			}
			continue
		}
		if err != nil || q.Interval != tt.want.Interval || !q.From.Equal(tt.want.From) || !q.To.Equal(tt.want.To) ||
			q.Category != tt.want.Category || q.Name != tt.want.Name {
			t.Errorf("%q: %+v, %v; want %+v", tt.query, q, err, tt.want)
		}
	}
}

// TestHandleStats: API.md's shape, with the seq the counts were read at.
func TestHandleStats(t *testing.T) {
	ix := &statsIndex{fakeIndex: fakeIndex{indexed: 50}}
	s := New(Config{Node: &fakeNode{}, Index: ix})
	rec := httptest.NewRecorder()
	s.handleStats(rec, httptest.NewRequest(http.MethodGet, "/v1/stats?from=2024-01-01T00:10:00Z&to=2024-01-01T02:00:00Z&category=page+interaction", nil), nil, &caller{})
	if rec.Code != 200 || rec.Header().Get("X-Eye-Indexed-Seq") != "41" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if ix.got.Category != "page interaction" || ix.got.Interval != time.Hour {
		t.Fatalf("query %+v", ix.got)
	}
	var body struct {
		Interval string `json:"interval"`
		Buckets  []struct {
			Start  string            `json:"start"`
			Total  int               `json:"total"`
			ByType []json.RawMessage `json:"by_type"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Interval != "1h" || len(body.Buckets) != 2 || body.Buckets[0].Start != "2024-01-01T00:00:00Z" || body.Buckets[0].Total != 3 ||
		string(body.Buckets[0].ByType[0]) != `{"category":"page interaction","name":"pageview","count":3}` || body.Buckets[1].ByType == nil {
		t.Fatalf("body %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	s.handleStats(rec, httptest.NewRequest(http.MethodGet, "/v1/stats?interval=5m", nil), nil, &caller{})
	if rec.Code != 400 {
		t.Fatalf("a bad interval: %d %s", rec.Code, rec.Body)
	}
}
