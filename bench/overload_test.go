package bench

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPromGauge(t *testing.T) {
	body := []byte(`# HELP theeye_cluster_index_lag_seconds On the leader: ...
# TYPE theeye_cluster_index_lag_seconds gauge
theeye_cluster_index_lag_seconds 1.25
theeye_cluster_index_lag_seconds_other 9
theeye_cluster_index_lag_events 31000
`)
	if v, ok := promGauge(body, "theeye_cluster_index_lag_seconds"); !ok || v != 1.25 {
		t.Fatalf("seconds %v %v", v, ok)
	}
	if v, ok := promGauge(body, "theeye_cluster_index_lag_events"); !ok || v != 31000 {
		t.Fatalf("events %v %v", v, ok)
	}
	if _, ok := promGauge(body, "theeye_missing"); ok {
		t.Fatal("a missing metric was read")
	}
}

// lagSamples builds samples 250 ms apart: applied[k] is the leader's
// applied seq at sample k, indexed[k][j] node j's indexed seq (0 with a
// node that did not answer is written as -1).
func lagSamples(t0 time.Time, applied []uint64, indexed [][]int64) []lagSample {
	out := make([]lagSample, len(applied))
	for k := range applied {
		sm := lagSample{at: t0.Add(time.Duration(k) * 250 * time.Millisecond), applied: applied[k], haveApplied: true, leader: "n1"}
		for _, v := range indexed[k] {
			sm.indexed = append(sm.indexed, uint64(max(v, 0)))
			sm.have = append(sm.have, v >= 0)
			sm.ready = append(sm.ready, true)
		}
		out[k] = sm
	}
	return out
}

// The bench's own lag of a node is how long ago the leader's applied seq
// first passed the node's indexed seq; a node that did not answer is NaN,
// and a node that has indexed everything is 0.
func TestNodeLags(t *testing.T) {
	t0 := time.Now()
	samples := lagSamples(t0, []uint64{100, 200, 300, 400, 400},
		[][]int64{{100, 100}, {200, 100}, {300, 150}, {400, -1}, {400, 400}})
	lags := nodeLags(samples)
	want := [][]float64{{0, 0}, {0, 0}, {0, 0.25}, {0, math.NaN()}, {0, 0}}
	for k := range want {
		for j := range want[k] {
			g, w := lags[k][j], want[k][j]
			if math.IsNaN(w) != math.IsNaN(g) || !math.IsNaN(w) && math.Abs(g-w) > 1e-9 {
				t.Fatalf("sample %d node %d: lag %v, want %v (all %v)", k, j, g, w, lags)
			}
		}
	}
	// Node 1 at 150 while the leader is at 400: seq 151 was applied by
	// the sample at 0.25 s (seq 200), read at 0.75 s.
	samples = lagSamples(t0, []uint64{100, 200, 300, 400}, [][]int64{{100, 100}, {200, 100}, {300, 150}, {400, 150}})
	if got := worst(nodeLags(samples)[3]); math.Abs(got-0.5) > 1e-9 {
		t.Fatalf("worst lag %v, want 0.5", got)
	}
}

func TestQuantile(t *testing.T) {
	vs := []float64{5, 1, math.NaN(), 3, 2, 4}
	for q, want := range map[float64]float64{0.5: 3, 0.99: 5, 1: 5, 0: 1} {
		if got, ok := quantile(vs, q); !ok || got != want {
			t.Errorf("quantile %v = %v, want %v", q, got, want)
		}
	}
	if _, ok := quantile([]float64{math.NaN()}, 0.5); ok {
		t.Error("a quantile of nothing")
	}
}

// An acknowledged event is lost on a node when the node has not indexed
// it, when two acks claim it, or when its ack carries no seq.
func TestLostEvents(t *testing.T) {
	acks := []ackRange{{last: 1100, n: 100}, {last: 1200, n: 100}, {last: 1300, n: 100}}
	if got := lostEvents(acks, 1000, 1300); got != 0 {
		t.Fatalf("all indexed: %d lost", got)
	}
	if got := lostEvents(acks, 1000, 1250); got != 50 {
		t.Fatalf("indexed to 1250: %d lost, want 50", got)
	}
	if got := lostEvents(append(acks, ackRange{last: 1150, n: 100}), 1000, 1300); got != 100 {
		t.Fatalf("an ack overlapping two others: %d lost, want 100", got)
	}
	if got := lostEvents(append(acks, ackRange{last: 0, n: 100}), 1000, 1300); got != 100 {
		t.Fatalf("an ack without a seq: %d lost, want 100", got)
	}
	if got := lostEvents([]ackRange{{last: 1050, n: 100}}, 1000, 1300); got != 50 {
		t.Fatalf("an ack reaching below the run's first seq: %d lost, want 50", got)
	}
}

func TestIndexedRate(t *testing.T) {
	t0 := time.Now()
	samples := lagSamples(t0, []uint64{0, 0, 0, 0, 0}, [][]int64{{0}, {1000}, {2000}, {-1}, {9000}})
	// In [0.2 s, 0.8 s]: the readings at 0.25 s (1000) and 0.5 s (2000).
	if r, ok := indexedRate(samples, 0, t0.Add(200*time.Millisecond), t0.Add(800*time.Millisecond)); !ok || math.Abs(r-4000) > 1e-6 {
		t.Fatalf("rate %v %v, want 4000", r, ok)
	}
	if _, ok := indexedRate(samples, 0, t0.Add(900*time.Millisecond), t0.Add(950*time.Millisecond)); ok {
		t.Fatal("a rate from no reading")
	}
}

func w9Sample() []Workload {
	return []Workload{
		{ID: "W9", Variant: "nodes=3 capacity", Figures: map[string]float64{"events_per_s": 20000, "indexed_events_per_s": 16000}},
		{ID: "W9", Variant: "nodes=3 offered=2x", Figures: map[string]float64{"offered_events_per_s": 32000, "events_per_s": 15500,
			"overloaded_pct": 51.5, "rate_limited_pct": 0, "insufficient_storage_pct": 0, "other_answers_pct": 0,
			"lag_p50_s": 1.5, "lag_p99_s": 2.5, "lag_max_s": 2.75, "lag_all_nodes_max_s": 2.75, "p99_ms": 900, "lost_events": 0,
			"retry_after_min_s": 1, "retry_after_max_s": 3},
			Timelines: map[string]Timeline{"leader gauge": {Chart: "lag", Unit: "s", AtS: []float64{0, 0.25}, Values: []float64{0, 0.5}}}},
		{ID: "W9", Variant: "nodes=3 offered=5x", Figures: map[string]float64{"offered_events_per_s": 80000, "events_per_s": 15000,
			"lag_p99_s": 6, "lost_events": 3}},
	}
}

func TestW9GoalsAndTable(t *testing.T) {
	r := sampleResult(t)
	r.Workloads = append(r.Workloads, w9Sample()...)
	r.Goals = Goals(r)
	byName := map[string]Goal{}
	for _, g := range r.Goals {
		byName[g.Name] = g
	}
	if g := byName["W9 index lag p99 at 2x offered"]; !g.Have || !g.Met || g.Measured != 2.5 {
		t.Errorf("2x lag goal %+v", g)
	}
	if g := byName["W9 index lag p99 at 5x offered"]; !g.Have || g.Met {
		t.Errorf("5x lag goal %+v", g)
	}
	if g := byName["W9 acknowledged but lost at 5x"]; !g.Have || g.Met || g.Measured != 3 {
		t.Errorf("5x lost goal %+v", g)
	}
	md := r.Markdown()
	for _, want := range []string{
		"W9 capacity (slowest node's indexing rate in a closed-loop burst): 16,000 events/s.",
		"| nodes=3 offered=2x | 32,000 | 15,500 | 51.5 | 0 | 0 | 0 | 1.50 | 2.50 | 2.75 | 2.75 | 900 | 1.00–3.00 | 0 |",
		"| nodes=3 offered=5x | 80,000 | 15,000 | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Count(md, "| W9 overload |") != 1 {
		t.Errorf("the W9 table header is not there exactly once:\n%s", md)
	}
}

func TestWithoutDigits(t *testing.T) {
	if got := withoutDigits("overloaded: the commit queue holds 2220 requests (limit 2048); retry in 1 s"); got != "overloaded: the commit queue holds N requests (limit N); retry in N s" {
		t.Fatal(got)
	}
}
