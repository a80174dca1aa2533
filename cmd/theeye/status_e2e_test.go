package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type eventStatus struct {
	ID      string `json:"id"`
	App     string `json:"app"`
	Seq     uint64 `json:"seq"`
	Status  string `json:"status"`
	Reasons []struct {
		Code, Field, Message string
	} `json:"reasons"`
	DuplicateOf uint64 `json:"duplicate_of"`
}

// status asks for the status of id with key (and the query, e.g.
// "app=web"), returning the HTTP status too.
func (p *proc) status(key, id, query string) (int, eventStatus, string) {
	p.t.Helper()
	st, b, _ := do(p.t, "GET", p.URL+"/v1/events/"+id+"/status?"+query, key, "", nil)
	var s eventStatus
	if st == 200 {
		mustJSON(p.t, b, &s)
	}
	return st, s, string(b)
}

// TestEventStatusEndToEnd: the status of an id for each outcome (a schema
// violation and a future timestamp fail; a byte-identical retry is the
// same event, and by its seq a duplicate; other bytes under the same id
// are a duplicate_id_conflict failure of their own), who may ask, and 404
// for an id the app never sent.
func TestEventStatusEndToEnd(t *testing.T) {
	n := startNode(t, t.TempDir())
	web, mobile, reader := n.createApp("web"), n.createApp("mobile"), n.readKey()
	n.putSchema("form interaction", "submit", formSchemaV1)
	future := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	ok := formSubmit("ok-1", `"John"`)
	n.post(web, "application/x-ndjson", []byte(strings.Join([]string{
		ok, formSubmit("schema-1", "12"), formSubmitAt("late-1", `"J"`, future),
	}, "\n")))
	retry := n.post(web, "application/json", []byte(ok))
	conflict := n.post(web, "application/json", []byte(formSubmit("ok-1", `"Jane"`)))
	n.get(fmt.Sprintf("/v1/events?min_seq=%d", conflict.Seq))

	for _, c := range []struct {
		key, id, query string
		http           int
		status         string
		seq            uint64
		reason         string
	}{
		{web, "ok-1", "", 200, "indexed", 1, ""},
		{reader, "ok-1", "app=web", 200, "indexed", 1, ""},
		{web, "schema-1", "", 200, "failed", 2, "schema_violation"},
		{web, "late-1", "app=web", 200, "failed", 3, "timestamp_in_future"},
		{web, "ok-1", "seq=" + strconv.FormatUint(retry.Seq, 10), 200, "duplicate", retry.Seq, ""},
		{web, "ok-1", "seq=" + strconv.FormatUint(conflict.Seq, 10), 200, "failed", conflict.Seq, "duplicate_id_conflict"},
		{web, "ok-1", "seq=2", 404, "", 0, ""},      // seq 2 is another id
		{mobile, "ok-1", "", 404, "", 0, ""},        // mobile never sent it
		{web, "never", "", 404, "", 0, ""},          // nobody did
		{mobile, "ok-1", "app=web", 403, "", 0, ""}, // an ingest key asks about its own app only
		{reader, "ok-1", "", 400, "", 0, ""},        // a read key names the app
		{web, "ok-1", "seq=-3", 400, "", 0, ""},     // a bad seq
		{web, strings.Repeat("i", 300), "", 400, "", 0, ""},
	} {
		st, s, body := n.status(c.key, c.id, c.query)
		if st != c.http || st == 200 && (s.Status != c.status || s.Seq != c.seq || s.ID != c.id || s.App != "web") {
			t.Errorf("%.20s?%s: %d %s, want %d %s at seq %d", c.id, c.query, st, body, c.http, c.status, c.seq)
			continue
		}
		if c.reason != "" && (len(s.Reasons) == 0 || s.Reasons[0].Code != c.reason || s.Reasons[0].Field == "") {
			t.Errorf("%s?%s: reasons %+v, want %s first", c.id, c.query, s.Reasons, c.reason)
		}
		if st == 200 && c.status == "duplicate" && s.DuplicateOf != 1 {
			t.Errorf("duplicate_of %d, want 1", s.DuplicateOf)
		}
	}
}

// tryStatus asks for the status of id, reporting a failed request (the
// node not serving yet) as an error.
func tryStatus(p *proc, key, id string) (string, eventStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/v1/events/"+id+"/status", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", eventStatus{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", eventStatus{}, fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	var s eventStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return "", eventStatus{}, fmt.Errorf("decode %s: %w", b, err)
	}
	return s.Status, s, nil
}

// TestEventStatusPending: while the node indexes its log again (its index
// dir removed), an event acknowledged but not yet indexed is pending, and
// becomes indexed, never the other way round.
func TestEventStatusPending(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	n := startNode(t, dir)
	key := n.createApp("web")
	const batches, per = 5, 10000
	for b := range batches {
		var sb strings.Builder
		for i := range per {
			id := ""
			if b == batches-1 && i == per-1 {
				id = "the-last"
			}
			fmt.Fprintln(&sb, streamEvent(id, fmt.Sprintf("s%d", i%100), "c", "n", "2021-01-01 00:00:00", i))
		}
		// Flow control may ask to slow down (429): retry until accepted.
		waitFor(t, 60*time.Second, "the batch accepted", func() error {
			st, b, _ := do(t, "POST", n.URL+"/v1/events", key, "application/x-ndjson", []byte(sb.String()))
			switch st {
			case 202:
				return nil
			case 429:
				return fmt.Errorf("%d %s", st, b)
			}
			t.Fatalf("post: %d %s", st, b)
			return nil
		})
	}
	// Each round drops the index and watches it come back; the indexer
	// may outrun the first request, so a few rounds are allowed.
	for round := 1; ; round++ {
		n.stop()
		if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
			t.Fatal(err)
		}
		// The same ports as before: ask at once, not after the listening
		// line (logged once the node has elected itself).
		n.startNoWait()
		var seen []string
		waitFor(t, 60*time.Second, "the last event indexed", func() error {
			st, s, err := tryStatus(n, key, "the-last")
			switch {
			case err != nil && len(seen) == 0: // not serving yet
				return err
			case err != nil:
				t.Fatal(err)
			}
			if len(seen) == 0 || seen[len(seen)-1] != s.Status {
				seen = append(seen, s.Status)
			}
			if s.Seq != batches*per {
				t.Fatalf("seq %d, want %d", s.Seq, batches*per)
			}
			if st != "indexed" {
				return fmt.Errorf("%s", st)
			}
			return nil
		})
		switch strings.Join(seen, ",") {
		case "pending,indexed":
			t.Logf("round %d: pending, then indexed", round)
			return
		case "indexed":
			if round < 3 {
				t.Logf("round %d: the index was back before the first answer; again", round)
				continue
			}
		}
		t.Fatalf("round %d: statuses %v, want pending then indexed", round, seen)
	}
}
