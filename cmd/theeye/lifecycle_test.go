package main

import (
	"bytes"
	"fmt"
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
