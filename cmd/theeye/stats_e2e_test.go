package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// statsBase is the first timestamp the stats test sends: events follow
// 13 s apart, so 4,000 of them span 14 hours.
var statsBase = time.Date(2021, 3, 1, 22, 0, 0, 0, time.UTC)

// postStatsEvents sends events [from, from+n) to p in batches of 500,
// each with a client id: 8 sessions, 4 categories, 3 names, one in 40 from
// the future (an error, not counted).
func postStatsEvents(t *testing.T, p *proc, key string, from, n int) ack {
	t.Helper()
	var a ack
	for i := from; i < from+n; i += 500 {
		var b strings.Builder
		for j := i; j < min(i+500, from+n); j++ {
			ts := statsBase.Add(time.Duration(j) * 13 * time.Second).Format(time.RFC3339Nano)
			if j%40 == 39 {
				ts = "2099-01-01T00:00:00Z"
			}
			fmt.Fprintf(&b, `{"id":"e-%d","session_id":"s%d","category":"c%d","name":"n%d","data":{"j":%d},"timestamp":%q}`+"\n",
				j, j%8, j%4, j%3, j, ts)
		}
		a = p.post(key, "application/x-ndjson", []byte(b.String()))
	}
	return a
}

// statsAnswer is GET /v1/stats's body.
type statsAnswer struct {
	Interval string        `json:"interval"`
	Buckets  []statsBucket `json:"buckets"`
}

type statsBucket struct {
	Start  string      `json:"start"`
	Total  int         `json:"total"`
	ByType []typeCount `json:"by_type"`
}

type typeCount struct {
	Category string `json:"category"`
	Name     string `json:"name"`
	Count    int    `json:"count"`
}

// statsFromExport is what GET /v1/stats must answer for interval d over
// [from, to) and category (optional), computed from the events exported.
func statsFromExport(t *testing.T, evs []event, interval string, d time.Duration, from, to time.Time, category string) statsAnswer {
	t.Helper()
	out := statsAnswer{Interval: interval}
	lo := from.Truncate(d)
	for s := lo; s.Before(to); s = s.Add(d) {
		out.Buckets = append(out.Buckets, statsBucket{Start: s.Format(time.RFC3339), ByType: []typeCount{}})
	}
	for _, e := range evs {
		ts, err := time.Parse(time.RFC3339Nano, e.Timestamp)
		if err != nil {
			t.Fatalf("exported timestamp %q: %v", e.Timestamp, err)
		}
		if ts.Before(lo) || !ts.Before(to) || category != "" && e.Category != category {
			continue
		}
		b := &out.Buckets[ts.Sub(lo)/d]
		b.Total++
		i, found := slices.BinarySearchFunc(b.ByType, typeCount{Category: e.Category, Name: e.Name}, func(x, y typeCount) int {
			return strings.Compare(x.Category+"\x00"+x.Name, y.Category+"\x00"+y.Name)
		})
		if !found {
			b.ByType = slices.Insert(b.ByType, i, typeCount{Category: e.Category, Name: e.Name})
		}
		b.ByType[i].Count++
	}
	return out
}

// checkStatsOnEveryNode requires, on every node, once it has indexed seq:
// each stats query to answer what the node's own full NDJSON export
// counts, and every node to answer the same bytes.
func checkStatsOnEveryNode(t *testing.T, c *testCluster, seq uint64, when string) {
	t.Helper()
	end := statsBase.Add(4 * 24 * time.Hour)
	queries := []struct {
		interval string
		d        time.Duration
		from, to time.Time
		category string
	}{
		{"1h", time.Hour, statsBase.Add(-3 * time.Hour), end, ""},
		{"1d", 24 * time.Hour, statsBase.Add(-48 * time.Hour), end, ""},
		{"1m", time.Minute, statsBase.Add(90 * time.Minute).Add(17 * time.Second), statsBase.Add(9 * time.Hour), "c2"},
	}
	first := map[int][]byte{}
	for _, p := range c.nodes {
		evs := p.exportAll(fmt.Sprintf("/v1/events?min_seq=%d&wait=60s", seq))
		if len(evs) < 1000 {
			t.Fatalf("%s %s: %d events exported", when, p.URL, len(evs))
		}
		for qi, q := range queries {
			v := url.Values{"interval": {q.interval}, "from": {q.from.Format(time.RFC3339)}, "to": {q.to.Format(time.RFC3339)},
				"min_seq": {fmt.Sprint(seq)}, "wait": {"60s"}}
			if q.category != "" {
				v.Set("category", q.category)
			}
			st, body, h := do(t, "GET", p.URL+"/v1/stats?"+v.Encode(), testAdminKey, "", nil)
			if st != 200 {
				t.Fatalf("%s %s: stats %d %s", when, p.URL, st, body)
			}
			var got statsAnswer
			mustJSON(t, body, &got)
			want := statsFromExport(t, evs, q.interval, q.d, q.from, q.to, q.category)
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if !bytes.Equal(gb, wb) {
				t.Fatalf("%s %s: stats %s (at seq %s) differ from the export's counts:\n got  %.600s\n want %.600s",
					when, p.URL, v.Encode(), h.Get("X-Eye-Indexed-Seq"), gb, wb)
			}
			if qi == 0 {
				t.Logf("%s %s: %d events exported, %d counted by hour, at seq %s", when, p.URL, len(evs), total(got), h.Get("X-Eye-Indexed-Seq"))
			}
			if first[qi] == nil {
				first[qi] = body
			} else if !bytes.Equal(first[qi], body) {
				t.Fatalf("%s: %s answers other bytes than %s for %s", when, p.URL, c.nodes[0].URL, v.Encode())
			}
		}
	}
}

func total(a statsAnswer) int {
	n := 0
	for _, b := range a.Buckets {
		n += b.Total
	}
	return n
}

// TestStatsEndToEnd: GET /v1/stats equals the counts of a full NDJSON
// export of the same node, on every node of a 3-node cluster, and is the
// same everywhere: after a load (invalid events and retried batches among
// it), an erasure, a clean restart and a kill -9 in the middle of indexing.
func TestStatsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false)
	key := c.nodes[0].createApp("shop")
	for i, p := range c.nodes {
		postStatsEvents(t, p, key, i*1000, 1000)
	}
	a := postStatsEvents(t, c.nodes[1], key, 500, 1000) // retries: duplicates, not counted again
	checkStatsOnEveryNode(t, c, a.Seq, "after the load")

	var del struct {
		ID string `json:"id"`
	}
	c.nodes[2].call("DELETE", "/v1/sessions/s3", testAdminKey, "", nil, 202, &del)
	for _, p := range c.nodes {
		waitFor(t, 90*time.Second, "deletion "+del.ID+" done on "+p.URL, func() error {
			_, body, _ := do(t, "GET", p.URL+"/v1/deletions/"+del.ID, testAdminKey, "", nil)
			if !bytes.Contains(body, []byte(`"status":"done"`)) {
				return fmt.Errorf("%s", body)
			}
			return nil
		})
	}
	if evs := c.nodes[0].exportAll("/v1/sessions/s3/events"); len(evs) != 0 {
		t.Fatalf("%d events of the erased session", len(evs))
	}
	checkStatsOnEveryNode(t, c, a.Seq, "after erasing a session")

	c.nodes[1].stop()
	postStatsEvents(t, c.nodes[0], key, 3000, 500)
	c.nodes[1].restart()
	a = postStatsEvents(t, c.nodes[1], key, 3500, 500)
	checkStatsOnEveryNode(t, c, a.Seq, "after a restart")

	// A kill -9 while the node indexes (at once after the ack): batches
	// it committed without a sync are lost with their counts, and indexed
	// again.
	a = postStatsEvents(t, c.nodes[0], key, 4000, 3000)
	if v, err := c.view(c.nodes[2]); err == nil {
		for _, nd := range v.Nodes {
			if nd.ID == "n3" && nd.IndexedSeq != nil {
				t.Logf("n3 killed at indexed seq %d of %d", *nd.IndexedSeq, a.Seq)
			}
		}
	}
	c.nodes[2].kill9()
	c.nodes[2].start()
	checkStatsOnEveryNode(t, c, a.Seq, "after a kill -9")
}

// TestStatsRetention: events that expire leave the counts once the node's
// purge deletes their keys, soon after they leave event queries; the
// events sent after them stay counted.
func TestStatsRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	p := startNode(t, t.TempDir(), "--retention", "3s")
	key := p.createApp("shop")
	a := postStatsEvents(t, p, key, 0, 2000)
	statsTotal := func(minSeq uint64) int {
		var got statsAnswer
		p.call("GET", fmt.Sprintf("/v1/stats?interval=1d&from=%s&to=%s&min_seq=%d&wait=30s", statsBase.Add(-24*time.Hour).Format(time.RFC3339),
			statsBase.Add(48*time.Hour).Format(time.RFC3339), minSeq), testAdminKey, "", nil, 200, &got)
		return total(got)
	}
	if n := statsTotal(a.Seq); n != 1950 {
		t.Fatalf("%d counted, want the 1950 valid events", n)
	}
	var gone time.Time
	waitFor(t, 60*time.Second, "the expired events to leave the queries and the counts", func() error {
		if n := len(p.exportAll("/v1/events")); n > 0 {
			return fmt.Errorf("%d events still returned", n)
		}
		if gone.IsZero() {
			gone = time.Now()
		}
		if n := statsTotal(0); n > 0 {
			return fmt.Errorf("%d events still counted", n)
		}
		return nil
	})
	t.Logf("the counts followed the event queries within %s", time.Since(gone).Round(time.Millisecond))
	a = postStatsEvents(t, p, key, 5000, 400)
	n, exported := statsTotal(a.Seq), len(p.exportAll(fmt.Sprintf("/v1/events?min_seq=%d", a.Seq)))
	if _, cut := clusterNodes(t, p); cut > a.Seq-399 {
		t.Logf("the new events expired too before they were checked (cut at %d): a slow machine", cut)
		return
	}
	if n != 390 || exported != 390 {
		t.Fatalf("%d counted after the cut, %d exported, want 390", n, exported)
	}
}
