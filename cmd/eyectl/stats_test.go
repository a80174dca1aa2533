package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestStats: eyectl stats as JSON (the server's shape) and as a table
// with a sparkline per type; bad flags are usage errors, a range the
// server refuses exit 2.
func TestStats(t *testing.T) {
	app, key := createApp(t)
	cat := "stats " + app // the shared node counts every test's events: a category of our own
	var lines []string
	for _, e := range []struct{ name, ts string }{
		{"view", "10:05:00"}, {"click", "10:59:59.999"}, {"view", "11:30:00"}, {"view", "13:00:00"}, {"view", "13:01:00"}, {"view", "13:59:00"},
	} {
		lines = append(lines, fmt.Sprintf(`{"session_id":"s","category":%q,"name":%q,"data":{"k":1},"timestamp":"2021-02-03T%sZ"}`, cat, e.name, e.ts))
	}
	s := parseSummary(t, eyectl(t, key, strings.Join(lines, "\n"), "send", "-").require(t, 0))
	args := []string{"stats", "--from", "2021-02-03T09:30:00Z", "--to", "2021-02-03T14:00:00Z", "--category", cat, "--min-seq", fmt.Sprint(s.LastSeq)}

	r := eyectl(t, adminKey, "", append(args, "-o", "json")...).require(t, 0)
	var out struct {
		Interval string `json:"interval"`
		Buckets  []struct {
			Start  string `json:"start"`
			Total  int    `json:"total"`
			ByType []struct {
				Category, Name string
				Count          int
			} `json:"by_type"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if out.Interval != "1h" || len(out.Buckets) != 5 || out.Buckets[0].Start != "2021-02-03T09:00:00Z" {
		t.Fatalf("json %s", r.stdout)
	}
	for i, want := range []int{0, 2, 1, 0, 3} {
		if out.Buckets[i].Total != want {
			t.Fatalf("bucket %d: %d, want %d: %s", i, out.Buckets[i].Total, want, r.stdout)
		}
	}
	if bt := out.Buckets[1].ByType; len(bt) != 2 || bt[0].Name != "click" || bt[0].Count != 1 {
		t.Fatalf("by type %+v", bt)
	}

	r = eyectl(t, adminKey, "", append(args, "-o", "table")...).require(t, 0)
	for _, want := range []string{
		"START                 TOTAL  BY TYPE\n2021-02-03T09:00:00Z  0      -\n",
		"2021-02-03T10:00:00Z  2      " + cat + "/click 1, " + cat + "/view 1\n",
		"all  ", " ▆▃ █\n", // 0 2 1 0 3
		cat + "/view   5       ▃▃ █\n", // 0 1 1 0 3
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, r.stdout)
		}
	}

	eyectl(t, adminKey, "", "stats", "--interval", "2h").require(t, exitUsage)
	eyectl(t, adminKey, "", "stats", "--name", "view").require(t, exitUsage)
	eyectl(t, adminKey, "", "stats", "--from", "now", "--to", "-1h").require(t, exitUsage)
	r = eyectl(t, adminKey, "", "stats", "--interval", "1m", "--from", "-30d").require(t, exitRefused)
	if !strings.Contains(r.stderr, "invalid_parameter") || !strings.Contains(r.stderr, "buckets") {
		t.Errorf("too many buckets: %s", r.stderr)
	}
}

func TestSparkline(t *testing.T) {
	for _, c := range []struct {
		values []uint64
		width  int
		want   string
	}{
		{nil, 10, ""},
		{[]uint64{0, 0}, 10, "  "},
		{[]uint64{1, 2, 3, 4, 5, 6, 7, 8}, 10, "▁▂▃▄▅▆▇█"},
		{[]uint64{0, 1000, 1}, 10, " █▁"},
		{[]uint64{1, 1, 0, 0, 4, 0, 2}, 3, "▄█▄"}, // summed by 3: 2, 4, 2
	} {
		if got := sparkline(c.values, c.width); got != c.want {
			t.Errorf("sparkline(%v, %d) = %q, want %q", c.values, c.width, got, c.want)
		}
	}
}
