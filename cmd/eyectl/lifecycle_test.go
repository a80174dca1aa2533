package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// ids returns the ids of events, in order.
func ids(evs []storedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// sendTwoSessions sends the brief's examples for two sessions of a new app
// to server and returns the app, the sessions and the last seq.
func sendTwoSessions(t *testing.T, server string) (string, [2]string, uint64) {
	t.Helper()
	var app, key string
	if server == shared.URL {
		app, key = createApp(t)
	} else {
		app, key = createAppOn(t, server)
	}
	sessions := [2]string{"sess-a-" + app, "sess-b-" + app}
	lines := append(examples(sessions[0]), examples(sessions[1])...)
	s := parseSummary(t, eyectl(t, key, strings.Join(lines, "\n")+"\n", "--server", server, "send", "-").require(t, 0))
	if s.Sent != 6 {
		t.Fatalf("sent %+v", s)
	}
	return app, sessions, s.LastSeq
}

// createAppOn is createApp on another node than the shared one.
func createAppOn(t *testing.T, server string) (string, string) {
	t.Helper()
	name := "app-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	r := eyectl(t, adminKey, "", "--server", server, "apps", "create", name, "-o", "json").require(t, 0)
	var out struct {
		Key struct{ Secret string } `json:"key"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Key.Secret == "" {
		t.Fatalf("apps create: %v %s", err, r.stdout)
	}
	return name, out.Key.Secret
}

// TestExport: the export of a session, and of a category to a FILE, holds
// exactly the events the same query lists, in the same order.
func TestExport(t *testing.T) {
	app, sessions, last := sendTwoSessions(t, shared.URL)
	minSeq := fmt.Sprint(last)
	want := ndjsonLines(t, eyectl(t, adminKey, "", "events", "--session", sessions[0], "--limit", "0", "--min-seq", minSeq, "-o", "ndjson").require(t, 0).stdout)
	r := eyectl(t, adminKey, "", "export", "--session", sessions[0]).require(t, 0)
	got := ndjsonLines(t, r.stdout)
	if len(want) != 3 || !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("session export %v, want %v", ids(got), ids(want))
	}
	if r.stderr != "" {
		t.Errorf("stderr %q without a terminal or --progress", r.stderr)
	}

	want = ndjsonLines(t, eyectl(t, adminKey, "", "events", "--category", "page interaction", "--app", app, "--limit", "0", "-o", "ndjson").require(t, 0).stdout)
	file := filepath.Join(t.TempDir(), "page.ndjson")
	r = eyectl(t, adminKey, "", "export", "--category", "page interaction", "--app", app, "-o", file, "--progress").require(t, 0)
	var sum struct {
		File   string `json:"file"`
		Events int    `json:"events"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.File != file || sum.Events != 4 {
		t.Errorf("summary %q: %v", r.stdout, err)
	}
	if !strings.Contains(r.stderr, "export: events written") {
		t.Errorf("no progress bar on stderr with --progress: %q", r.stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got = ndjsonLines(t, string(b))
	if len(want) != 4 || !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("category export %v, want %v", ids(got), ids(want))
	}
	r = eyectl(t, adminKey, "", "export", "--category", "page interaction", "-o", file).require(t, exitUsage)
	if !strings.Contains(r.stderr, "exists") {
		t.Errorf("an existing FILE: %q", r.stderr)
	}
	eyectl(t, adminKey, "", "export", "--session", "x", "--app", app).require(t, exitUsage)
	eyectl(t, adminKey, "", "export", "--from", "2021-01-02", "--to", "2021-01-01").require(t, exitUsage)
}

// TestErrorsSummary: the counts grow by exactly the invalid events sent,
// by reason and by type.
func TestErrorsSummary(t *testing.T) {
	_, key := createApp(t)
	from := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	summary := func(minSeq uint64) (s struct {
		Total    uint64            `json:"total"`
		ByReason map[string]uint64 `json:"by_reason"`
		ByType   []struct {
			Category, Name string
			Count          uint64
		} `json:"by_type"`
	}) {
		t.Helper()
		r := eyectl(t, adminKey, "", "errors", "summary", "--from", from, "--min-seq", fmt.Sprint(minSeq), "-o", "json").require(t, 0)
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatalf("summary %q: %v", r.stdout, err)
		}
		return s
	}
	before := summary(0)
	category := "summary " + key[len(key)-8:]
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	in := fmt.Sprintf(`{"session_id":"s","category":%[1]q,"name":"a","data":{},"timestamp":"2021-01-01T00:00:00Z"}
{"session_id":"s","category":%[1]q,"name":"a","data":{},"timestamp":"2021-01-01T00:00:01Z"}
{"session_id":"s","category":%[1]q,"name":"b","data":{"x":1},"timestamp":%[2]q}
{"session_id":"s","category":%[1]q,"name":"b","data":{"x":1},"timestamp":"2021-01-01T00:00:02Z"}
`, category, future)
	s := parseSummary(t, eyectl(t, key, in, "send", "-").require(t, 0))
	after := summary(s.LastSeq)
	if d := after.Total - before.Total; d != 3 {
		t.Errorf("total grew by %d, want 3", d)
	}
	for reason, n := range map[string]uint64{"empty_data": 2, "timestamp_in_future": 1} {
		if d := after.ByReason[reason] - before.ByReason[reason]; d != n {
			t.Errorf("%s grew by %d, want %d", reason, d, n)
		}
	}
	var mine []string
	for _, tc := range after.ByType {
		if tc.Category == category {
			mine = append(mine, fmt.Sprintf("%s=%d", tc.Name, tc.Count))
		}
	}
	if !slices.Equal(mine, []string{"a=2", "b=1"}) {
		t.Errorf("by type %v, want a=2 b=1", mine)
	}
	r := eyectl(t, adminKey, "", "errors", "summary", "--from", from, "-o", "table").require(t, 0)
	for _, want := range []string{"REASON", "empty_data", "CATEGORY", category} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, r.stdout)
		}
	}
	eyectl(t, key, "", "errors", "summary").require(t, exitRefused) // an ingest key cannot read
}

// TestTwoNodeConfigAndErase, on a cluster of two: a config set on one node
// is what the other shows; a bad value is refused with the server's reason;
// erase --wait returns once the session is gone from both nodes, and
// another session is still there.
func TestTwoNodeConfigAndErase(t *testing.T) {
	const ck = "eyectl-test-cluster-key"
	a, err := theeyetest.StartNode(theeyeBin, t.TempDir(), adminKey, "--cluster-key", ck)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill9)
	b, err := theeyetest.StartNode(theeyeBin, t.TempDir(), adminKey, "--node-id", "n2", "--join", a.URL, "--cluster-key", ck)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Kill9)

	r := eyectl(t, adminKey, "", "--server", a.URL, "config", "set", "--retention", "720h", "--max-clock-skew", "2m", "-o", "json").require(t, 0)
	if !strings.Contains(r.stdout, `"retention": "720h0m0s"`) || !strings.Contains(r.stdout, `"max_clock_skew": "2m0s"`) {
		t.Errorf("config set: %s", r.stdout)
	}
	waitFor(t, 30*time.Second, "the new config on the other node", func() error {
		r := eyectl(t, adminKey, "", "--server", b.URL, "config", "get", "-o", "table")
		if r.code != 0 || !strings.Contains(r.stdout, "720h0m0s") || !strings.Contains(r.stdout, "2m0s") {
			return fmt.Errorf("exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		return nil
	})
	r = eyectl(t, adminKey, "", "--server", b.URL, "config", "set", "--retention", "500ms").require(t, exitRefused)
	if !strings.Contains(r.stderr, "400 invalid_request: retention 500ms") || !strings.Contains(r.stderr, "a second or more") {
		t.Errorf("a bad retention: %q", r.stderr)
	}
	eyectl(t, adminKey, "", "--server", a.URL, "config", "set").require(t, exitUsage)

	_, sessions, last := sendTwoSessions(t, a.URL)
	for _, n := range []*node{a, b} {
		eyectl(t, adminKey, "", "--server", n.URL, "events", "--session", sessions[0], "--min-seq", fmt.Sprint(last), "--limit", "1").require(t, 0)
	}
	r = eyectl(t, adminKey, "", "--server", a.URL, "erase", sessions[0], "--wait", "-o", "json").require(t, 0)
	var rep struct {
		ID, Status string
		Nodes      []struct {
			Node          string
			Status        string
			EventsDeleted int `json:"events_deleted"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Status != "done" || len(rep.Nodes) != 2 {
		t.Fatalf("erase --wait: %q %v", r.stdout, err)
	}
	for _, n := range rep.Nodes {
		if n.Status != "done" || n.EventsDeleted != 3 {
			t.Errorf("node %+v", n)
		}
	}
	for _, n := range []*node{a, b} {
		if got := ndjsonLines(t, eyectl(t, adminKey, "", "--server", n.URL, "events", "--session", sessions[0], "-o", "ndjson").require(t, 0).stdout); len(got) != 0 {
			t.Errorf("%s still has %d events of the erased session", n.URL, len(got))
		}
		if got := ndjsonLines(t, eyectl(t, adminKey, "", "--server", n.URL, "events", "--session", sessions[1], "-o", "ndjson").require(t, 0).stdout); len(got) != 3 {
			t.Errorf("%s has %d events of the other session, want 3", n.URL, len(got))
		}
	}
	r = eyectl(t, adminKey, "", "--server", b.URL, "deletion", rep.ID, "-o", "table").require(t, 0)
	if !strings.Contains(r.stdout, "NODE") || strings.Count(r.stdout, " done ") < 2 {
		t.Errorf("deletion table:\n%s", r.stdout)
	}
	eyectl(t, adminKey, "", "--server", a.URL, "deletion", "del_999999").require(t, exitRefused)
}
