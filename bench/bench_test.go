package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The open-loop scheduler issues rate*d requests, spread over d, even when
// the target is slower than the arrival interval (it does not wait for
// answers), and times each from when it was due.
func TestOpenLoopRate(t *testing.T) {
	const rate, d = 2000.0, 500 * time.Millisecond
	var calls atomic.Int64
	start := time.Now()
	st, err := OpenLoop(context.Background(), rate, d, 64, 50*time.Millisecond, func(context.Context, int, int64) (int, int, error) {
		calls.Add(1)
		<-time.After(5 * time.Millisecond) // service time of the fake target: ten arrivals per answer
		return 1, 10, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if got, want := calls.Load(), int64(rate*d.Seconds()); got != want {
		t.Fatalf("issued %d requests, want %d", got, want)
	}
	if st.Events != 1000 || st.Ops != 1000 || st.Bytes != 10000 {
		t.Fatalf("stats %+v", st)
	}
	if elapsed < d-10*time.Millisecond || elapsed > d+400*time.Millisecond {
		t.Fatalf("took %s for a %s schedule", elapsed, d)
	}
	if st.Latency.P50 < 5 {
		t.Fatalf("p50 %.2f ms is under the target's 5 ms", st.Latency.P50)
	}
}

// A target that stalls shows in the open loop's percentiles (no
// coordinated omission): requests due during the stall wait for a slot.
func TestOpenLoopStallShows(t *testing.T) {
	st, err := OpenLoop(context.Background(), 1000, 200*time.Millisecond, 1, 10*time.Millisecond, func(_ context.Context, _ int, i int64) (int, int, error) {
		if i == 0 {
			<-time.After(100 * time.Millisecond) // the fake target stalls once
		}
		return 1, 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Half the requests were due during the stall: timed from when they
	// were due, they waited 0–100 ms; timed from when they were sent, ~0.
	if st.Latency.P90 < 50 {
		t.Fatalf("p90 %.2f ms: the requests queued behind the 100 ms stall were timed from when they were sent", st.Latency.P90)
	}
}

func TestClosedLoop(t *testing.T) {
	var calls atomic.Int64
	st, err := ClosedLoop(context.Background(), 4, 20*time.Millisecond, 100*time.Millisecond, 10*time.Millisecond, func(context.Context, int, int64) (int, int, error) {
		calls.Add(1)
		<-time.After(time.Millisecond) // service time of the fake target
		return 2, 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Ops == 0 || st.Ops >= calls.Load() || st.Events != 2*st.Ops {
		t.Fatalf("ops %d events %d calls %d: warm-up must not be recorded", st.Ops, st.Events, calls.Load())
	}
	if st.Latency.P50 < 1 || st.Latency.P50 > 50 {
		t.Fatalf("p50 %.2f ms", st.Latency.P50)
	}
}

func sampleResult(t *testing.T) *Result {
	t.Helper()
	rec := NewRecorder(time.Now(), 100*time.Millisecond)
	for i := 0; i < 100; i++ {
		rec.Record(time.Now(), time.Duration(i+1)*time.Millisecond, 1, 100, nil)
	}
	st := rec.Stats(time.Second)
	r := &Result{Machine: Machine{OS: "linux", CPUs: 2}, Commit: "abc1234", Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Quick: true,
		Parameters: map[string]any{"events": 1000.0}}
	r.Baselines = []Workload{{ID: "http-noop", Variant: "W1 load", Figures: map[string]float64{"events_per_s": 10000}, Runs: map[string]Stats{"ack": st}}}
	r.Workloads = []Workload{
		{ID: "W1", Variant: "nodes=1", Figures: map[string]float64{"events_per_s": 6000, "p50_ms": 1.5, "p99_ms": 4}, Runs: map[string]Stats{"ack": st},
			Baseline: "http-noop W1 load", Ratio: 0.6},
		{ID: "W6", Variant: "nodes=1", Figures: map[string]float64{"max_total_b_per_event_per_node": 140}},
	}
	r.Goals = Goals(r)
	return r
}

func TestResultRoundTrip(t *testing.T) {
	r := sampleResult(t)
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("round trip differs:\n%s\n%s", a, b)
	}
	h := got.Workloads[0].Runs["ack"].Hist()
	if h == nil || h.TotalCount() != 100 || h.ValueAtQuantile(50) < 49000 || h.ValueAtQuantile(50) > 51000 {
		t.Fatalf("histogram after the round trip: %v", h)
	}
}

func TestGoals(t *testing.T) {
	r := sampleResult(t)
	byName := map[string]Goal{}
	for _, g := range r.Goals {
		byName[g.Name] = g
	}
	if g := byName["W1 1 node vs HTTP ceiling"]; !g.Have || !g.Met || g.Measured != 0.6 {
		t.Fatalf("W1 goal %+v", g)
	}
	if g := byName["W6 disk per event per node"]; !g.Met {
		t.Fatalf("W6 goal %+v", g)
	}
	if g := byName["W3 ack p99 at 5,000/s"]; g.Have || g.Met {
		t.Fatalf("a goal of a workload that did not run: %+v", g)
	}
}

func TestMarkdown(t *testing.T) {
	md := sampleResult(t).Markdown()
	for _, want := range []string{
		"# The Eye bench: quick run, commit abc1234",
		"| workload | events/s | MB/s | p50 ms | p99 ms | p99.9 ms | other | vs baseline |",
		"| W1 nodes=1 | 6,000 | | 1.50 | 4.00 | |  | 60.0% of http-noop W1 load |",
		"| W1 1 node vs HTTP ceiling | ratio >= 0.5 | 0.6 | yes |",
		"| W3 ack p99 at 5,000/s | ms <= 5.00 | 0 | not measured |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestParseMicro(t *testing.T) {
	out := `goos: linux
pkg: github.com/theeye/theeye/log
BenchmarkAppend/codec=zstd/events=1000-2   57   2121303 ns/op   182.12 MB/s   471408 events/s   203591 B/op   1 allocs/op
BenchmarkAppend/codec=zstd/events=1000-2   60   2000000 ns/op   190.00 MB/s   480000 events/s   203591 B/op   1 allocs/op
BenchmarkAppend/codec=zstd/events=1000-2   61   3000000 ns/op   150.00 MB/s   400000 events/s   203591 B/op   1 allocs/op
pkg: github.com/theeye/theeye
BenchmarkParseEvent/event=brief-submit-2   1000   900 ns/op   0 B/op   0 allocs/op
PASS
`
	ms, err := ParseMicro(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Package != "log" || ms[0].Name != "BenchmarkAppend/codec=zstd/events=1000" || ms[0].Runs != 3 ||
		ms[0].Metrics["ns/op"] != 2121303 || ms[0].Metrics["events/s"] != 471408 || ms[1].Package != "theeye" {
		t.Fatalf("%+v", ms)
	}
}

func TestEventGen(t *testing.T) {
	g := EventGen{Sessions: 1000, Base: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Step: time.Hour / (1000 * Categories)}
	var v map[string]any
	if err := json.Unmarshal(g.Append(nil, 42), &v); err != nil {
		t.Fatal(err)
	}
	if v["category"] != CategoryName(2) || v["session_id"] != SessionID(g.Session(42)) || v["timestamp"] != "2024-01-01T00:00:07.560000Z" {
		t.Fatalf("%v", v)
	}
	if n := strings.Count(string(g.NDJSON(0, 10)), "\n"); n != 10 {
		t.Fatalf("%d lines", n)
	}
	// 20,000 events are one hour: 1,000 per category.
	if got := g.Time(20000).Sub(g.Base); got != time.Hour {
		t.Fatalf("20,000 events span %s", got)
	}
}

func TestFormatNumber(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1234567: "1,234,567", 150: "150", 12.34: "12.3", 1.5: "1.50", 0.1234: "0.123"} {
		if got := FormatNumber(v); got != want {
			t.Errorf("FormatNumber(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestProfileName(t *testing.T) {
	for in, want := range map[[3]string]string{
		{"W1", "nodes=1", "n1"}:             "w1-nodes-1-n1",
		{"W3", "nodes=3 rate=5000", "n2"}:   "w3-nodes-3-rate-5000-n2",
		{"W4", "category day export", "n1"}: "w4-category-day-export-n1",
	} {
		if got := profileName(in[0], in[1], in[2]); got != want {
			t.Errorf("profileName(%q, %q, %q) = %q, want %q", in[0], in[1], in[2], got, want)
		}
	}
}

// A workload's timelines become a chart of their own, named after their
// chart, with a line per workload and timeline.
func TestTimelineChart(t *testing.T) {
	r := &Result{Workloads: []Workload{{ID: "W9", Variant: "v", Figures: map[string]float64{},
		Timelines: map[string]Timeline{"a": {Chart: "lag", Unit: "s", AtS: []float64{0, 0.25}, Values: []float64{0, 0.5}},
			"b": {Chart: "lag", Unit: "s", AtS: []float64{0, 0.25}, Values: []float64{1, 0}}}}}}
	prefix := filepath.Join(t.TempDir(), "r")
	files, err := WriteCharts(r, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0] != "r-W9-lag.png" {
		t.Fatalf("charts %v", files)
	}
	if fi, err := os.Stat(prefix + "-W9-lag.png"); err != nil || fi.Size() == 0 {
		t.Fatalf("lag chart: %v", err)
	}
}
