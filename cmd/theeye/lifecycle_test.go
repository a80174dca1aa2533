package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// postMarked sends n events of session, each with a data marker the test
// can look for, in batches of 50, and returns the last ack.
func postMarked(t *testing.T, p *proc, key, session, marker string, n int) ack {
	t.Helper()
	var a ack
	for i := 0; i < n; i += 50 {
		var b strings.Builder
		b.WriteByte('[')
		for j := i; j < min(i+50, n); j++ {
			if j > i {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"session_id":%q,"category":"page interaction","name":"pageview","data":{"marker":"%s-%06d","pad":%q},"timestamp":"2021-01-01T09:00:00Z"}`,
				session, marker, j, strings.Repeat("p", 200))
		}
		b.WriteByte(']')
		a = p.post(key, "application/json", []byte(b.String()))
	}
	return a
}

// clusterNodes returns GET /v1/cluster's nodes and retained_from.
func clusterNodes(t *testing.T, p *proc) (nodes []struct {
	ID         string  `json:"id"`
	FirstSeq   *uint64 `json:"first_seq"`
	IndexedSeq *uint64 `json:"indexed_seq"`
}, retainedFrom uint64) {
	t.Helper()
	var v struct {
		Nodes []struct {
			ID         string  `json:"id"`
			FirstSeq   *uint64 `json:"first_seq"`
			IndexedSeq *uint64 `json:"indexed_seq"`
		} `json:"nodes"`
		RetainedFrom uint64 `json:"retained_from"`
	}
	p.call("GET", "/v1/cluster", testAdminKey, "", nil, 200, &v)
	return v.Nodes, v.RetainedFrom
}

// TestRetention: with a short --retention, events leave every query of
// every node once they expire, the same seqs everywhere; every node frees
// the log segments they filled and purges their index keys; later events
// stay, and a cursor taken into the expired events goes on with what is
// left.
func TestRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false, "--retention", "3s", "--log-segment-size", "8192", "--codec", "none")
	key := c.nodes[0].createApp("shop")
	old := postMarked(t, c.nodes[1], key, "old", "expired", 200)
	var pg page
	c.nodes[2].call("GET", fmt.Sprintf("/v1/sessions/old/events?limit=10&min_seq=%d&wait=30s", old.Seq), testAdminKey, "", nil, 200, &pg)
	if pg.NextCursor == nil || len(pg.Events) != 10 {
		t.Fatalf("a page of the old events: %d, cursor %v", len(pg.Events), pg.NextCursor)
	}
	cursor := *pg.NextCursor

	waitFor(t, 60*time.Second, "the old events to leave every node's queries", func() error {
		for _, p := range c.nodes {
			if n := len(p.exportAll("/v1/sessions/old/events")); n != 0 {
				return fmt.Errorf("%s still returns %d old events", p.URL, n)
			}
		}
		return nil
	})
	_, cut := clusterNodes(t, c.nodes[0])
	if cut <= old.Seq {
		t.Fatalf("retained_from %d, want past the old events (last seq %d)", cut, old.Seq)
	}
	fresh := postMarked(t, c.nodes[2], key, "fresh", "kept", 20)
	for _, p := range c.nodes {
		if got := p.exportAll(fmt.Sprintf("/v1/sessions/fresh/events?min_seq=%d&wait=30s", fresh.Seq)); len(got) != 20 || got[0].Seq < cut {
			t.Fatalf("%s: %d fresh events, want 20 above the cut %d", p.URL, len(got), cut)
		}
		// The cursor into the expired events: 200, and what is left.
		st, b, _ := do(t, "GET", p.URL+"/v1/sessions/old/events?cursor="+cursor, testAdminKey, "", nil)
		if st != 200 || !bytes.Contains(b, []byte(`"events":[]`)) {
			t.Fatalf("%s: the cursor into expired events: %d %s", p.URL, st, b)
		}
	}
	// Every node frees its disk: segments below the cut dropped, index
	// keys purged.
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range c.nodes {
				_, b, _ := do(t, "GET", p.URL+"/metrics", "", "", nil)
				t.Logf("%s metrics: %s", p.URL, regexp.MustCompile(`(?m)^theeye_(indexer_purged_total|indexer_indexed_seq|raft_applied_seq) .*$`).FindAll(b, -1))
			}
		}
	})
	purged := regexp.MustCompile(`(?m)^theeye_indexer_purged_total (\d+)`)
	waitFor(t, 60*time.Second, "every node to drop its expired segments and purge its index", func() error {
		nodes, _ := clusterNodes(t, c.nodes[0])
		for _, nd := range nodes {
			if nd.FirstSeq == nil || *nd.FirstSeq <= 1 {
				return fmt.Errorf("%s: first_seq %d", nd.ID, deref(nd.FirstSeq))
			}
		}
		for _, p := range c.nodes {
			_, b, _ := do(t, "GET", p.URL+"/metrics", "", "", nil)
			m := purged.FindSubmatch(b)
			if m == nil {
				return fmt.Errorf("%s: no purge counter", p.URL)
			}
			if n, _ := strconv.Atoi(string(m[1])); n < 200 {
				return fmt.Errorf("%s: %d events purged", p.URL, n)
			}
		}
		return nil
	})
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// filesHolding returns the files under dir that hold needle.
func filesHolding(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, needle) {
			out = append(out, strings.TrimPrefix(path, dir))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEraseSession: DELETE /v1/sessions/{id} erases the session's events
// logged before it, valid and failed, from every query of every node and
// from every byte of every node's data dir (log/, index, Raft log store,
// snapshots, WAL files), checked by reading every file (with no
// compression, so that it cannot hide them, and a positive control
// before); later events of the session stay, and a restart brings nothing
// back.
func TestEraseSession(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false, "--codec", "none", "--log-segment-size", "16384")
	key := c.nodes[0].createApp("shop")
	post := func(p *proc, session, marker string, n int, future bool) ack {
		ts := "2021-01-01T09:00:00Z"
		if future {
			ts = "2099-01-01T00:00:00Z" // fails validation: an error record
		}
		var b strings.Builder
		b.WriteByte('[')
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":"%s-%d","session_id":%q,"category":"page interaction","name":"pageview","data":{"m":"%s-%04d"},"timestamp":%q}`,
				marker, i, session, marker, i, ts)
		}
		b.WriteByte(']')
		return p.post(key, "application/json", []byte(b.String()))
	}
	post(c.nodes[0], "victim", "VICTIMVALID", 60, false)
	post(c.nodes[1], "bystander", "KEEPMARKER", 40, false)
	post(c.nodes[2], "victim", "VICTIMFAILED", 20, true)
	a := post(c.nodes[1], "bystander", "KEEPMARKER2", 40, false)
	for _, p := range c.nodes {
		p.get(fmt.Sprintf("/v1/events?limit=1&min_seq=%d&wait=30s", a.Seq))
		// The positive control: the events are on disk before.
		got := filesHolding(t, p.DataDir, []byte("VICTIMVALID-0007"))
		t.Logf("%s: before the deletion, the victim's bytes are in %v", p.URL, got)
		if len(got) == 0 {
			t.Fatalf("%s: no file holds the victim's event before the deletion: the check would prove nothing", p.DataDir)
		}
	}

	var del struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		AtSeq  uint64 `json:"at_seq"`
	}
	c.nodes[2].call("DELETE", "/v1/sessions/victim", testAdminKey, "", nil, 202, &del)
	if del.Status != "pending" || !strings.HasPrefix(del.ID, "del_") || del.AtSeq < a.Seq {
		t.Fatalf("delete: %+v", del)
	}
	later := post(c.nodes[0], "victim", "LATERMARKER", 5, false)
	for _, p := range c.nodes {
		waitDeletionDone(t, p, del.ID, 80)
	}
	check := func(when string) {
		t.Helper()
		for _, p := range c.nodes {
			evs := p.exportAll(fmt.Sprintf("/v1/sessions/victim/events?min_seq=%d&wait=30s", later.Seq))
			if len(evs) != 5 || !strings.Contains(string(evs[0].Data), "LATERMARKER") {
				t.Fatalf("%s %s: the session's events %d, want the 5 sent after the deletion", when, p.URL, len(evs))
			}
			_, all, _ := do(t, "GET", p.URL+"/v1/events?category=page+interaction", testAdminKey, "", nil, "Accept", "application/x-ndjson")
			_, errs, _ := do(t, "GET", p.URL+"/v1/errors", testAdminKey, "", nil, "Accept", "application/x-ndjson")
			if bytes.Contains(all, []byte("VICTIM")) || bytes.Contains(errs, []byte("VICTIM")) || !bytes.Contains(all, []byte("KEEPMARKER")) {
				t.Fatalf("%s %s: a query still returns the erased events, or lost the others", when, p.URL)
			}
			for _, m := range []string{"VICTIMVALID-00", "VICTIMFAILED-00"} {
				if got := filesHolding(t, p.DataDir, []byte(m)); len(got) > 0 {
					t.Fatalf("%s %s: files still hold %s: %v", when, p.DataDir, m, got)
				}
			}
			if got := filesHolding(t, p.DataDir, []byte("KEEPMARKER-0007")); len(got) == 0 {
				t.Fatalf("%s %s: the bystander's events are gone from disk", when, p.DataDir)
			}
		}
	}
	check("after the deletion")
	c.nodes[1].kill9()
	c.nodes[1].start()
	check("after a kill -9 and a restart")
}

// waitDeletionDone polls GET /v1/deletions/{id} on p until it is done,
// with deleted events erased (404 while p has not applied it yet).
func waitDeletionDone(t *testing.T, p *proc, id string, deleted int) {
	t.Helper()
	waitFor(t, 90*time.Second, "deletion "+id+" done on "+p.URL, func() error {
		var st struct {
			Status        string `json:"status"`
			EventsDeleted int    `json:"events_deleted"`
		}
		code, body, _ := do(t, "GET", p.URL+"/v1/deletions/"+id, testAdminKey, "", nil)
		if code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("%w: %s", err, body)
		}
		if st.Status != "done" || st.EventsDeleted != deleted {
			return fmt.Errorf("%+v, want done with %d events deleted", st, deleted)
		}
		return nil
	})
}

// TestEraseReachesANodeThatWasDown: a follower that was stopped while a
// session was erased, and that the leader then catches up through a
// snapshot (its Raft log no longer reaches back), erases the events it
// held when it comes back: no query of it returns them, no file of its
// data dir holds them, and the bystander's events stay.
func TestEraseReachesANodeThatWasDown(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false, "--codec", "none", "--log-segment-size", "16384",
		"--raft-snapshot-threshold", "32", "--raft-trailing-logs", "8", "--raft-snapshot-interval", "200ms")
	key := c.nodes[0].createApp("shop")
	lead := c.leader()
	postMarked(t, lead, key, "victim", "VICTIMVALID", 100)
	a := postMarked(t, lead, key, "bystander", "KEEPMARKER", 100)
	var down *proc
	for _, p := range c.nodes {
		p.get(fmt.Sprintf("/v1/events?limit=1&min_seq=%d&wait=30s", a.Seq))
		if len(filesHolding(t, p.DataDir, []byte("VICTIMVALID-000007"))) == 0 {
			t.Fatalf("%s: no file holds the victim's event before the deletion: the check would prove nothing", p.DataDir)
		}
		if p != lead && down == nil {
			down = p
		}
	}
	down.stop()
	var del struct {
		ID string `json:"id"`
	}
	lead.call("DELETE", "/v1/sessions/victim", testAdminKey, "", nil, 202, &del)
	for _, p := range c.nodes {
		if p != down {
			waitDeletionDone(t, p, del.ID, 100)
		}
	}
	// Enough entries after the deletion that the leader's snapshots pass
	// it and its Raft log no longer holds what the stopped node lacks.
	for i := range 60 {
		postMarked(t, lead, key, "later", fmt.Sprintf("LATER%02d", i), 1)
	}
	// The deletion's own snapshot is too early (the entries after it stay
	// in the Raft log): wait until both running nodes (whichever leads when
	// the stopped one comes back) hold one taken among the later posts,
	// after which they keep 8 trailing entries, far past the stopped node
	// (at Raft index 15 or so).
	for _, p := range c.nodes {
		if p == down {
			continue
		}
		waitFor(t, 30*time.Second, "a snapshot past the stopped follower on "+p.URL, func() error {
			snaps, _ := filepath.Glob(filepath.Join(p.DataDir, "raft", "snapshots", "snapshots", "*", "meta.json"))
			newest := 0
			for _, m := range snaps {
				// Named term-index-millis.
				if f := strings.Split(filepath.Base(filepath.Dir(m)), "-"); len(f) == 3 {
					if i, err := strconv.Atoi(f[1]); err == nil {
						newest = max(newest, i)
					}
				}
			}
			if newest < 40 {
				return fmt.Errorf("newest snapshot at Raft index %d, want 40 or later", newest)
			}
			return nil
		})
	}
	down.restart()
	c.waitMembers(3)
	waitDeletionDone(t, down, del.ID, 100)
	// The leader's Raft log no longer reaches back to where the node
	// stopped (the deletion purged it): Raft installs a snapshot, with the
	// frames of the events the node lacks when it lacks any.
	if !strings.Contains(down.Out.String(), "Installed remote snapshot") {
		t.Fatalf("the follower did not catch up through a snapshot:\n%s", down.Out.String())
	}
	_, all, _ := do(t, "GET", down.URL+"/v1/events", testAdminKey, "", nil, "Accept", "application/x-ndjson")
	if bytes.Contains(all, []byte("VICTIM")) || !bytes.Contains(all, []byte("KEEPMARKER")) {
		t.Fatalf("%s: a query still returns the erased events, or lost the others", down.URL)
	}
	if got := filesHolding(t, down.DataDir, []byte("VICTIMVALID-00")); len(got) > 0 {
		t.Fatalf("%s: files still hold the erased events: %v", down.DataDir, got)
	}
	if got := filesHolding(t, down.DataDir, []byte("KEEPMARKER-000007")); len(got) == 0 {
		t.Fatalf("%s: the bystander's events are gone from disk", down.DataDir)
	}
}
