package bench

import (
	"strings"
	"testing"
	"time"
)

// /proc/<pid>/stat: utime and stime are fields 14 and 15, counted after a
// command name that may hold spaces and parentheses.
func TestParseProcStat(t *testing.T) {
	line := "4242 (the eye) (x)) S 1 4242 4242 0 -1 4194560 1203 0 0 0 1234 567 0 0 20 0 12 0 100 0 0\n"
	ut, st, err := parseProcStat([]byte(line))
	if err != nil || ut != 1234 || st != 567 {
		t.Fatalf("utime %d stime %d err %v, want 1234 567", ut, st, err)
	}
	for _, bad := range []string{"", "4242 (theeye S 1 2", "4242 (theeye) S 1 2 3", "1 (a) S 1 1 1 0 -1 0 0 0 0 0 x 5 0"} {
		if _, _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The quiet window is the first one of at least a second over which the
// processes used less than the threshold; it starts at a sample.
func TestQuietStart(t *testing.T) {
	t0 := time.Unix(0, 0)
	var samples []cpuSample
	cpu := time.Duration(0)
	for i := 0; i <= 40; i++ { // every 100 ms: busy (half a core) for 2 s, then idle
		if i > 0 && i <= 20 {
			cpu += 50 * time.Millisecond
		}
		samples = append(samples, cpuSample{t0.Add(time.Duration(i) * 100 * time.Millisecond), cpu})
		k, ok := quietStart(samples, time.Second, 0.05)
		if ok != (i >= 30) {
			t.Fatalf("after sample %d: quiet %v", i, ok)
		}
		if ok && k != 20 {
			t.Fatalf("quiet window starts at sample %d, want 20 (the end of the busy part)", k)
		}
		if ok {
			break
		}
	}
	if _, ok := quietStart(samples[:5], time.Second, 0.05); ok {
		t.Fatal("quiet over less than a window")
	}
}

// The medians of rounds, and the Markdown table of W2's rounds.
func TestRoundsMedianAndTable(t *testing.T) {
	rows := []map[string]float64{
		{"round": 1, "events_per_s": 20000, "indexed_all_nodes_events_per_s": 10000, "nats_stored_all_replicas_events_per_s": 40000, "vs_nats_ratio": 0.25},
		{"round": 2, "events_per_s": 24000, "indexed_all_nodes_events_per_s": 12000, "nats_stored_all_replicas_events_per_s": 30000, "vs_nats_ratio": 0.4},
	}
	if m, lo, hi, ok := median(rows, "vs_nats_ratio"); !ok || m != 0.325 || lo != 0.25 || hi != 0.4 {
		t.Fatalf("median %v %v %v %v", m, lo, hi, ok)
	}
	if _, _, _, ok := median(rows, "absent"); ok {
		t.Fatal("median of an absent figure")
	}
	ws := []Workload{
		{ID: "W2", Variant: "nodes=3", Figures: map[string]float64{"events_per_s": 20000, "indexed_all_nodes_events_per_s": 10000, "p99_ms": 50}, Runs: map[string]Stats{"batch": {Ops: 1}}},
		{ID: "W2", Variant: "nodes=3", Figures: map[string]float64{"events_per_s": 24000, "indexed_all_nodes_events_per_s": 12000, "p99_ms": 70}, Runs: map[string]Stats{"batch": {Ops: 2}}},
		{ID: "W2", Variant: "nodes=3", Figures: map[string]float64{"events_per_s": 30000, "indexed_all_nodes_events_per_s": 11000, "p99_ms": 60}, Runs: map[string]Stats{"batch": {Ops: 3}}},
	}
	w := combineRounds(ws, rows, "batch")
	if w.Figures["indexed_all_nodes_events_per_s"] != 11000 || w.Figures["events_per_s"] != 24000 || w.Figures["p99_ms"] != 60 {
		t.Fatalf("combined figures %v", w.Figures)
	}
	if w.Figures["indexed_all_nodes_events_per_s_min"] != 10000 || w.Figures["indexed_all_nodes_events_per_s_max"] != 12000 || len(w.Runs) != 3 {
		t.Fatalf("combined %v, %d runs", w.Figures, len(w.Runs))
	}
	md := sustainedTable([]Workload{w})
	for _, want := range []string{"| 1 | 20,000 | 10,000 |", "| median | 22,000 | 11,000 |", "0.33×"} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

// The stream reader matches a data line to its event by the event's id.
func TestStreamEventIndex(t *testing.T) {
	p := []byte("w8-abc-")
	for line, want := range map[string]int{
		`data: {"seq":12,"id":"w8-abc-42","app":"bench"}`: 42,
		`data:{"app":"bench","id":"w8-abc-0"}`:            0,
	} {
		if i, ok := streamEventIndex([]byte(line), p); !ok || i != want {
			t.Errorf("%s: %d %v, want %d", line, i, ok, want)
		}
	}
	for _, line := range []string{`id: 12`, `data: {"id":"w8-abd-1"}`, `data: {"id":"w8-abc-"}`, `data: {"id":"w8-abc-12x"}`, `: keep-alive`, `data: {"id":"w8-abc-7`} {
		if i, ok := streamEventIndex([]byte(line), p); ok {
			t.Errorf("%s: matched %d", line, i)
		}
	}
}
