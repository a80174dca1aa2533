package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tailEvents builds n valid events of category, one invalid one (from
// the future) and one of another category, as NDJSON.
func tailEvents(category, prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"id":"%s-%d","session_id":"tail","category":%q,"name":"n","data":{"i":%d},"timestamp":"2021-01-01T09:00:00Z"}`+"\n",
			prefix, i, category, i)
	}
	fmt.Fprintf(&b, `{"session_id":"tail","category":%q,"name":"n","data":{"i":-1},"timestamp":%q}`+"\n",
		category, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, `{"session_id":"tail","category":"other","name":"n","data":{"i":-2},"timestamp":"2021-01-01T09:00:00Z"}`+"\n")
	return b.String()
}

// TestTailFromSeq: tail --from-seq replays what follows the seq, then
// follows live, each valid event of its filter once, in seq order, and
// ends cleanly when its context is cancelled.
func TestTailFromSeq(t *testing.T) {
	app, key := createApp(t)
	category := "tail " + app
	s := parseSummary(t, eyectl(t, key, tailEvents(category, "a", 3), "send", "-").require(t, 0))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan result, 1)
	go func() {
		done <- eyectlCtx(ctx, t, adminKey, "", out, "tail", "--category", category, "--from-seq", fmt.Sprint(s.LastSeq-5), "-o", "json")
	}()
	lines := func() []storedEvent { return ndjsonLines(t, out.String()) }
	waitFor(t, 20*time.Second, "the 3 stored events", func() error {
		if n := len(lines()); n < 3 {
			return fmt.Errorf("%d lines: %q", n, out.String())
		}
		return nil
	})
	eyectl(t, key, tailEvents(category, "b", 2), "send", "-").require(t, 0)
	waitFor(t, 20*time.Second, "the 2 new events", func() error {
		if n := len(lines()); n < 5 {
			return fmt.Errorf("%d lines: %q", n, out.String())
		}
		return nil
	})
	cancel()
	r := (<-done).require(t, 0)
	var ids []string
	var seqs []uint64
	for _, e := range ndjsonLines(t, r.stdout) {
		ids = append(ids, e.ID)
		seqs = append(seqs, e.Seq)
		if e.App != app || e.Category != category {
			t.Errorf("event %+v is not of the filter", e)
		}
	}
	if !slices.Equal(ids, []string{"a-0", "a-1", "a-2", "b-0", "b-1"}) || !slices.IsSorted(seqs) {
		t.Fatalf("tail printed %v (seqs %v)", ids, seqs)
	}
}

// TestTailLive: without --from-seq tail starts at the live end: what was
// indexed before it does not show, what comes after does, as table rows
// under one header.
func TestTailLive(t *testing.T) {
	app, key := createApp(t)
	eyectl(t, key, tailEvents("live "+app, "old", 2), "send", "-").require(t, 0)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan result, 1)
	before := streamsOpen(t)
	go func() { done <- eyectlCtx(ctx, t, adminKey, "", out, "tail", "--app", app, "-o", "table") }()
	waitFor(t, 20*time.Second, "the stream to open", func() error {
		if n := streamsOpen(t); n <= before {
			return fmt.Errorf("%v streams open", n)
		}
		return nil
	})
	eyectl(t, key, tailEvents("live "+app, "new", 2), "send", "-").require(t, 0)
	waitFor(t, 20*time.Second, "the new events", func() error {
		if !strings.Contains(out.String(), "other") || strings.Count(out.String(), "live "+app) < 2 {
			return fmt.Errorf("output %q", out.String())
		}
		return nil
	})
	cancel()
	r := (<-done).require(t, 0)
	rows := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(rows) != 4 || !strings.HasPrefix(rows[0], "SEQ ") || strings.Contains(r.stdout, `"i":-1`) {
		t.Fatalf("want a header and the 3 valid new events of the app (2 of its category, 1 other):\n%s", r.stdout)
	}
	for _, row := range rows[1:] {
		if strings.Contains(row, `"i":0`) && strings.Contains(row, "old") {
			t.Fatalf("an event from before tail started: %s", row)
		}
	}
}

// streamsOpen reads theeye_streams_open from the shared node.
func streamsOpen(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get(shared.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^theeye_streams_open (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no theeye_streams_open on /metrics")
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestStatus: eyectl status of an indexed, a failed and (with --seq) a
// duplicate event; an id never sent and a read key without --app are
// refused (exit 2).
func TestStatus(t *testing.T) {
	app, key := createApp(t)
	ok := `{"id":"st-ok","session_id":"st","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01T09:00:00Z"}`
	bad := fmt.Sprintf(`{"id":"st-bad","session_id":"st","category":"c","name":"n","data":{"a":1},"timestamp":%q}`,
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	eyectl(t, key, ok+"\n"+bad+"\n", "send", "-").require(t, 0)
	retry := parseSummary(t, eyectl(t, key, ok+"\n", "send", "-").require(t, 0))

	status := func(key string, args ...string) (result, map[string]any) {
		r := eyectl(t, key, "", append([]string{"status", "-o", "json"}, args...)...)
		var v map[string]any
		if r.code == 0 {
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
				t.Fatalf("status %v: %q: %v", args, r.stdout, err)
			}
		}
		return r, v
	}
	waitFor(t, 20*time.Second, "the failed event", func() error {
		if _, v := status(key, "st-bad"); v["status"] != "failed" {
			return fmt.Errorf("%v", v)
		}
		return nil
	})
	if r, v := status(key, "st-ok"); r.code != 0 || v["status"] != "indexed" || v["app"] != app {
		t.Errorf("st-ok: %d %v %s", r.code, v, r.stderr)
	}
	if r, v := status(adminKey, "st-bad", "--app", app); r.code != 0 || !strings.Contains(fmt.Sprint(v["reasons"]), "timestamp_in_future") {
		t.Errorf("st-bad: %d %v %s", r.code, v, r.stderr)
	}
	if r, v := status(adminKey, "st-ok", "--app", app, "--seq", fmt.Sprint(retry.LastSeq)); r.code != 0 || v["status"] != "duplicate" {
		t.Errorf("the retry: %d %v %s", r.code, v, r.stderr)
	}
	r := eyectl(t, adminKey, "", "status", "st-ok", "--app", app, "-o", "table").require(t, 0)
	if !regexp.MustCompile(`STATUS\s+indexed`).MatchString(r.stdout) {
		t.Errorf("table: %q", r.stdout)
	}
	if r, _ := status(key, "never-sent"); r.code != exitRefused || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("never sent: %d %s", r.code, r.stderr)
	}
	if r, _ := status(adminKey, "st-ok"); r.code != exitRefused || !strings.Contains(r.stderr, "app is required") {
		t.Errorf("no --app with a read key: %d %s", r.code, r.stderr)
	}
	eyectl(t, key, "", "status").require(t, exitUsage)
}
