package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The brief's three examples.
const (
	exPageview = `{"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "page interaction", "name": "pageview", "data": {"host": "www.consumeraffairs.com", "path": "/"}, "timestamp": "2021-01-01 09:15:27.243860"}`
	exCTA      = `{"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "page interaction", "name": "cta click", "data": {"host": "www.consumeraffairs.com", "path": "/", "element": "chat bubble"}, "timestamp": "2021-01-01 09:15:27.243860"}`
	exSubmit   = `{"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "form interaction", "name": "submit", "data": {"host": "www.consumeraffairs.com", "path": "/", "form": {"first_name": "John", "last_name": "Doe"}}, "timestamp": "2021-01-01 09:15:27.243860"}`
	exSession  = "e2085be5-9137-4e4e-80b5-f1ffddc25423"
)

// TestBriefExamplesEndToEnd: the README walk-through, against the real
// binary: create an app, send the examples in the three body forms, query
// them back every way API.md offers.
func TestBriefExamplesEndToEnd(t *testing.T) {
	n := startNode(t, t.TempDir())
	key := n.createApp("shop-web")

	a1 := n.post(key, "application/json", []byte(exPageview))
	if a1.Accepted != 1 || a1.Seq != 1 {
		t.Fatalf("one object: ack %+v, want accepted 1 seq 1", a1)
	}
	a2 := n.post(key, "application/json", []byte("["+exPageview+","+exCTA+","+exSubmit+"]"))
	if a2.Accepted != 3 || a2.Seq != 4 {
		t.Fatalf("array: ack %+v, want accepted 3 seq 4", a2)
	}
	a3 := n.post(key, "application/x-ndjson", []byte(exPageview+"\n"+exCTA+"\n"+exSubmit+"\n"))
	if a3.Accepted != 3 || a3.Seq != 7 {
		t.Fatalf("ndjson: ack %+v, want accepted 3 seq 7", a3)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("[" + exCTA + "]"))
	zw.Close()
	st, b, _ := do(t, "POST", n.URL+"/v1/events", key, "application/json", gz.Bytes(), "Content-Encoding", "gzip")
	if st != 202 {
		t.Fatalf("gzip: %d %s", st, b)
	}

	// By session, read-your-writes via min_seq: all 8, ordered by
	// timestamp (all equal here) then seq.
	pg := n.get("/v1/sessions/" + exSession + "/events?min_seq=8")
	if len(pg.Events) != 8 || pg.NextCursor != nil {
		t.Fatalf("session: %d events, cursor %v", len(pg.Events), pg.NextCursor)
	}
	for i, e := range pg.Events {
		if e.Seq != uint64(i+1) {
			t.Fatalf("session event %d has seq %d", i, e.Seq)
		}
		if e.App != "shop-web" || e.ID == "" || e.Timestamp != "2021-01-01T09:15:27.24386Z" || e.ReceivedAt == "" {
			t.Fatalf("returned event %+v lacks server fields or has a wrong timestamp", e)
		}
	}
	if pg.Events[3].Category != "form interaction" || string(compactJSON(t, pg.Events[3].Data)) != `{"host":"www.consumeraffairs.com","path":"/","form":{"first_name":"John","last_name":"Doe"}}` {
		t.Fatalf("event 4 = %+v", pg.Events[3])
	}

	// By category, and category + name.
	if pg := n.get("/v1/events?category=page+interaction"); len(pg.Events) != 6 {
		t.Fatalf("category: %d events, want 6", len(pg.Events))
	}
	if pg := n.get("/v1/events?category=page+interaction&name=cta+click"); len(pg.Events) != 3 {
		t.Fatalf("category+name: %d events, want 3", len(pg.Events))
	}
	if pg := n.get("/v1/events?category=form+interaction&name=submit&app=other"); len(pg.Events) != 0 {
		t.Fatalf("app filter: %d events, want 0", len(pg.Events))
	}
	// By time range: [from, to) on the event timestamp.
	if pg := n.get("/v1/events?from=2021-01-01T09:15:27Z&to=2021-01-01T09:15:28Z"); len(pg.Events) != 8 {
		t.Fatalf("time range: %d events, want 8", len(pg.Events))
	}
	if pg := n.get("/v1/events?from=2021-01-01T09:15:27.243860Z&to=2021-01-01T09:15:27.243861Z&category=form+interaction"); len(pg.Events) != 2 {
		t.Fatalf("narrow range: %d events, want 2", len(pg.Events))
	}
	if pg := n.get("/v1/events?to=2021-01-01T09:15:27.243860Z"); len(pg.Events) != 0 {
		t.Fatalf("to is exclusive: %d events, want 0", len(pg.Events))
	}

	// Paging with limit and cursor equals the whole; desc reverses it.
	var paged []uint64
	path := "/v1/sessions/" + exSession + "/events?limit=3"
	for {
		pg := n.get(path)
		for _, e := range pg.Events {
			paged = append(paged, e.Seq)
		}
		if pg.NextCursor == nil {
			break
		}
		path = "/v1/sessions/" + exSession + "/events?limit=3&cursor=" + *pg.NextCursor
	}
	if !slices.Equal(paged, []uint64{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("paged seqs %v", paged)
	}
	desc := n.get("/v1/sessions/" + exSession + "/events?order=desc&limit=2")
	if len(desc.Events) != 2 || desc.Events[0].Seq != 8 || desc.Events[1].Seq != 7 {
		t.Fatalf("desc page %+v", desc.Events)
	}

	// NDJSON export streams every match.
	if all := n.exportAll("/v1/events?category=page+interaction"); len(all) != 6 {
		t.Fatalf("ndjson export: %d events, want 6", len(all))
	}

	// Every response says how far this node has indexed.
	_, _, h := do(t, "GET", n.URL+"/v1/events", testAdminKey, "", nil)
	if h.Get("X-Eye-Indexed-Seq") != "8" {
		t.Fatalf("X-Eye-Indexed-Seq = %q, want 8", h.Get("X-Eye-Indexed-Seq"))
	}

	// Bad parameters are 400s that say which.
	for _, q := range []string{"from=yesterday", "limit=0", "limit=10001", "cursor=@@@", "order=up", "min_seq=x", "wait=forever", "name=submit"} {
		st, b, _ := do(t, "GET", n.URL+"/v1/events?"+q, testAdminKey, "", nil)
		if st != 400 || !bytes.Contains(b, []byte(`"code":"invalid_parameter"`)) {
			t.Errorf("?%s: %d %s, want 400 invalid_parameter", q, st, b)
		}
	}
	// min_seq not reached within wait: 503.
	st, b, _ = do(t, "GET", n.URL+"/v1/events?min_seq=1000&wait=50ms", testAdminKey, "", nil)
	if st != 503 {
		t.Fatalf("min_seq beyond the log: %d %s, want 503", st, b)
	}
}

func compactJSON(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestInvalidEventsAreKeptAsErrors: every reason code that needs no schema,
// produced by a real event through the real HTTP path, shows under
// /v1/errors with its field; nothing is dropped.
func TestInvalidEventsAreKeptAsErrors(t *testing.T) {
	n := startNode(t, t.TempDir(), "--max-event-age", "8760h")
	key := n.createApp("web")
	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02 15:04:05")
	recent := time.Now().UTC().Add(-time.Hour).Format("2006-01-02 15:04:05")
	cases := []struct{ raw, code, field string }{
		{`{"category":"c","name":"n","data":{"a":1},"timestamp":"` + recent + `"}`, "missing_field", "/session_id"},
		{`{"session_id":"s","category":7,"name":"n","data":{"a":1},"timestamp":"` + recent + `"}`, "wrong_type", "/category"},
		{`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"` + recent + `","seq":1}`, "reserved_field", "/seq"},
		{`{"session_id":"s","category":"c","name":"n","data":{},"timestamp":"` + recent + `"}`, "empty_data", "/data"},
		{`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"31/12/2020"}`, "invalid_timestamp", "/timestamp"},
		{`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"` + future + `"}`, "timestamp_in_future", "/timestamp"},
		{`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2001-01-01 00:00:00"}`, "timestamp_too_old", "/timestamp"},
	}
	var body []string
	for _, c := range cases {
		body = append(body, c.raw)
	}
	valid := `{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"` + time.Now().UTC().Format(time.RFC3339) + `"}`
	body = append(body, valid)
	a := n.post(key, "application/x-ndjson", []byte(strings.Join(body, "\n")))
	if a.Accepted != len(cases)+1 {
		t.Fatalf("accepted %d, want %d: invalid events are accepted and judged later", a.Accepted, len(cases)+1)
	}
	st, b, _ := do(t, "GET", n.URL+fmt.Sprintf("/v1/errors?min_seq=%d", a.Seq), testAdminKey, "", nil)
	if st != 200 {
		t.Fatalf("errors: %d %s", st, b)
	}
	var resp struct {
		Errors []struct {
			Seq     uint64 `json:"seq"`
			App     string `json:"app"`
			Reasons []struct{ Code, Field, Message string }
			Event   json.RawMessage `json:"event"`
		} `json:"errors"`
	}
	mustJSON(t, b, &resp)
	if len(resp.Errors) != len(cases) {
		t.Fatalf("%d errors, want %d: %s", len(resp.Errors), len(cases), b)
	}
	for i, c := range cases {
		e := resp.Errors[i]
		if e.Seq != uint64(i+1) || e.App != "web" || len(e.Reasons) == 0 {
			t.Fatalf("error %d = %+v", i, e)
		}
		if e.Reasons[0].Code != c.code || e.Reasons[0].Field != c.field || e.Reasons[0].Message == "" {
			t.Errorf("case %d: reason %+v, want %s at %s", i, e.Reasons[0], c.code, c.field)
		}
		if !bytes.Equal(compactJSON(t, e.Event), compactJSON(t, []byte(c.raw))) {
			t.Errorf("case %d: stored event %s, want the raw event %s", i, e.Event, c.raw)
		}
	}
	// The reason filter.
	st, b, _ = do(t, "GET", n.URL+"/v1/errors?reason=empty_data", testAdminKey, "", nil)
	mustJSON(t, b, &resp)
	if st != 200 || len(resp.Errors) != 1 || resp.Errors[0].Reasons[0].Code != "empty_data" {
		t.Fatalf("reason filter: %d %s", st, b)
	}
	// The valid one is queryable; the invalid ones are not events.
	if pg := n.get("/v1/sessions/s/events"); len(pg.Events) != 1 || pg.Events[0].Seq != a.Seq {
		t.Fatalf("session s: %+v, want only the valid event", pg.Events)
	}
}

// TestSynchronousRefusalsStoreNothing: each refusal of API.md gets its
// status and a specific message, and stores nothing (the next accepted
// event takes the very next seq).
func TestSynchronousRefusalsStoreNothing(t *testing.T) {
	n := startNode(t, t.TempDir(), "--max-event", "512", "--max-body", "4096")
	key := n.createApp("web")
	st, b, _ := do(t, "POST", n.URL+"/v1/keys", testAdminKey, "application/json", []byte(`{"name":"reader","scopes":["read"]}`))
	if st != 201 {
		t.Fatalf("create read key: %d %s", st, b)
	}
	var rk struct{ Secret string }
	mustJSON(t, b, &rk)

	if a := n.post(key, "application/json", []byte(exPageview)); a.Seq != 1 {
		t.Fatalf("first seq %d", a.Seq)
	}
	big := `{"session_id":"s","category":"c","name":"n","data":{"x":"` + strings.Repeat("y", 600) + `"},"timestamp":"2021-01-01 09:15:27"}`
	cases := []struct {
		name, key, ct, body string
		status              int
		code, mention       string
	}{
		{"not json", key, "application/json", `[{"a":1},{"b":]`, 400, "invalid_json", "byte offset 14"},
		{"element not object", key, "application/json", "[" + exPageview + `, 42]`, 400, "not_an_object", "element 1"},
		{"ndjson line not object", key, "application/x-ndjson", exPageview + "\n[1]\n", 400, "not_an_object", "line 2"},
		{"empty batch", key, "application/json", `[]`, 400, "empty_batch", "no events"},
		{"event too large", key, "application/json", "[" + exPageview + "," + big + "]", 413, "event_too_large", "event 1"},
		{"body too large", key, "application/x-ndjson", strings.Repeat(exPageview+"\n", 30), 413, "body_too_large", "4096"},
		{"content type", key, "text/plain", exPageview, 415, "unsupported_media_type", "text/plain"},
		{"no key", "", "application/json", exPageview, 401, "unauthorized", "Authorization"},
		{"unknown key", "eye_nope", "application/json", exPageview, 401, "unauthorized", "unknown"},
		{"read key cannot ingest", rk.Secret, "application/json", exPageview, 403, "forbidden", "ingest"},
	}
	for _, c := range cases {
		st, b, _ := do(t, "POST", n.URL+"/v1/events", c.key, c.ct, []byte(c.body))
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.Unmarshal(b, &e)
		if st != c.status || e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.mention) {
			t.Errorf("%s: %d %s, want %d %s mentioning %q", c.name, st, b, c.status, c.code, c.mention)
		}
	}
	// An ingest key cannot read or administer.
	if st, b, _ := do(t, "GET", n.URL+"/v1/events", key, "", nil); st != 403 {
		t.Errorf("ingest key reading: %d %s, want 403", st, b)
	}
	if st, b, _ := do(t, "POST", n.URL+"/v1/apps", key, "application/json", []byte(`{"name":"x"}`)); st != 403 {
		t.Errorf("ingest key creating an app: %d %s, want 403", st, b)
	}
	if st, b, _ := do(t, "POST", n.URL+"/v1/apps", testAdminKey, "application/json", []byte(`{"name":"web"}`)); st != 409 {
		t.Errorf("duplicate app: %d %s, want 409", st, b)
	}
	// Nothing refused was stored: the next event is seq 2.
	if a := n.post(key, "application/json", []byte(exCTA)); a.Seq != 2 {
		t.Fatalf("after refusals the next seq is %d, want 2", a.Seq)
	}
	if pg := n.get("/v1/events?min_seq=2"); len(pg.Events) != 2 {
		t.Fatalf("%d events stored, want 2", len(pg.Events))
	}
	// A revoked key stops working.
	var keys struct {
		Keys []struct{ ID, Name string }
	}
	_, b, _ = do(t, "GET", n.URL+"/v1/keys", testAdminKey, "", nil)
	mustJSON(t, b, &keys)
	for _, k := range keys.Keys {
		if k.Name == "reader" {
			if st, b, _ := do(t, "DELETE", n.URL+"/v1/keys/"+k.ID, testAdminKey, "", nil); st != 200 {
				t.Fatalf("revoke: %d %s", st, b)
			}
		}
	}
	if st, _, _ := do(t, "GET", n.URL+"/v1/events", rk.Secret, "", nil); st != 401 {
		t.Fatalf("revoked key: %d, want 401", st)
	}
}

// TestTwoAppsOneSession (invariant 8): two apps writing the same session
// see one session, ordered by timestamp, ties broken by seq.
func TestTwoAppsOneSession(t *testing.T) {
	n := startNode(t, t.TempDir())
	web, mobile := n.createApp("web"), n.createApp("mobile")
	ev := func(ts, name string) string {
		return `{"session_id":"shared","category":"page interaction","name":"` + name + `","data":{"p":1},"timestamp":"` + ts + `"}`
	}
	n.post(web, "application/json", []byte("["+ev("2021-01-01 09:00:03", "w3")+","+ev("2021-01-01 09:00:01", "w1")+"]"))
	last := n.post(mobile, "application/json", []byte("["+ev("2021-01-01 09:00:02", "m2")+","+ev("2021-01-01 09:00:01", "m1")+"]"))
	pg := n.get(fmt.Sprintf("/v1/sessions/shared/events?min_seq=%d", last.Seq))
	var got []string
	for _, e := range pg.Events {
		got = append(got, e.App+":"+e.Name)
	}
	want := []string{"web:w1", "mobile:m1", "mobile:m2", "web:w3"}
	if !slices.Equal(got, want) {
		t.Fatalf("session order %v, want %v", got, want)
	}
}

// TestDuplicateIDIndexedOnce (invariant 7): a retry with the same id is
// acknowledged again, takes a seq of its own, and is indexed once; the
// same id from another app is another event.
func TestDuplicateIDIndexedOnce(t *testing.T) {
	n := startNode(t, t.TempDir())
	web, mobile := n.createApp("web"), n.createApp("mobile")
	ev := `{"id":"evt-1","session_id":"d","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 09:00:00"}`
	a1 := n.post(web, "application/json", []byte(ev))
	a2 := n.post(web, "application/json", []byte(ev))
	a3 := n.post(mobile, "application/json", []byte(ev))
	if a1.Seq != 1 || a2.Seq != 2 || a3.Seq != 3 {
		t.Fatalf("seqs %d %d %d, want 1 2 3", a1.Seq, a2.Seq, a3.Seq)
	}
	pg := n.get("/v1/sessions/d/events?min_seq=3")
	if len(pg.Events) != 2 || pg.Events[0].ID != "evt-1" || pg.Events[0].App != "web" || pg.Events[1].App != "mobile" {
		t.Fatalf("session d: %+v, want evt-1 once per app", pg.Events)
	}
}

// TestKill9MidIndexingIndexesExactlyOnce (invariants 1 and 5): events are
// acknowledged, the process is killed with SIGKILL while the indexer is
// still working, and after a restart every acknowledged event is indexed
// exactly once.
func TestKill9MidIndexingIndexesExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	n := startNode(t, t.TempDir())
	key := n.createApp("web")
	const batches, perBatch = 40, 500
	want := map[string]bool{}
	var last ack
	for b := 0; b < batches; b++ {
		var sb strings.Builder
		for i := 0; i < perBatch; i++ {
			id := fmt.Sprintf("e-%d-%d", b, i)
			want[id] = true
			fmt.Fprintf(&sb, `{"id":%q,"session_id":"s%d","category":"c%d","name":"n","data":{"i":%d},"timestamp":"2021-01-01T09:%02d:%02dZ"}`+"\n",
				id, i%50, b%5, i, b%60, i%60)
		}
		last = n.post(key, "application/x-ndjson", []byte(sb.String()))
	}
	if last.Seq != batches*perBatch {
		t.Fatalf("last seq %d, want %d", last.Seq, batches*perBatch)
	}
	n.kill9()
	// Whatever the indexer had reached, the restart must finish the job
	// without indexing anything twice.
	n.restart()
	all := n.exportAll(fmt.Sprintf("/v1/events?min_seq=%d&wait=60s", last.Seq))
	seen := map[string]bool{}
	for _, e := range all {
		if seen[e.ID] {
			t.Fatalf("event %s indexed twice", e.ID)
		}
		seen[e.ID] = true
		if !want[e.ID] {
			t.Fatalf("unexpected event %s", e.ID)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%d events indexed, want %d", len(seen), len(want))
	}
	// The other keyspaces agree.
	total := 0
	for c := 0; c < 5; c++ {
		total += len(n.exportAll(fmt.Sprintf("/v1/events?category=c%d", c)))
	}
	if total != len(want) {
		t.Fatalf("categories hold %d events, want %d", total, len(want))
	}
}

// TestRestartAndRebuildKeepVerdicts (invariants 3 and 4): after a clean
// restart nothing is re-applied (the next seq follows on), and an index
// rebuilt from the log later reaches the same verdicts, because they depend
// on received_at, not on the clock of the indexing node.
func TestRestartAndRebuildKeepVerdicts(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	key := n.createApp("web")
	soon := time.Now().UTC().Add(2 * time.Minute).Format(time.RFC3339)   // within the 5 min skew
	later := time.Now().UTC().Add(20 * time.Minute).Format(time.RFC3339) // beyond it
	body := `{"session_id":"v","category":"c","name":"n","data":{"a":1},"timestamp":"` + soon + `"}` + "\n" +
		`{"session_id":"v","category":"c","name":"n","data":{"a":2},"timestamp":"` + later + `"}` + "\n"
	a := n.post(key, "application/x-ndjson", []byte(body))
	before := n.get(fmt.Sprintf("/v1/sessions/v/events?min_seq=%d", a.Seq))
	_, errsBefore, _ := do(t, "GET", n.URL+"/v1/errors", testAdminKey, "", nil)
	if len(before.Events) != 1 || !bytes.Contains(errsBefore, []byte("timestamp_in_future")) {
		t.Fatalf("before: %+v / %s", before.Events, errsBefore)
	}
	n.stop()
	n.restart()
	if a2 := n.post(key, "application/json", []byte(exPageview)); a2.Seq != a.Seq+1 {
		t.Fatalf("after restart seq %d, want %d: entries were re-applied", a2.Seq, a.Seq+1)
	}
	n.stop()
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	n.restart()
	after := n.get(fmt.Sprintf("/v1/sessions/v/events?min_seq=%d", a.Seq+1))
	_, errsAfter, _ := do(t, "GET", n.URL+"/v1/errors", testAdminKey, "", nil)
	if len(after.Events) != 1 || after.Events[0].Seq != before.Events[0].Seq {
		t.Fatalf("rebuilt index: %+v, want %+v", after.Events, before.Events)
	}
	if !bytes.Equal(errsBefore, errsAfter) {
		t.Fatalf("errors differ after rebuild:\n%s\n%s", errsBefore, errsAfter)
	}
}

// TestOperationalEndpoints: health, readiness, metrics and the OpenAPI
// document answer without a key, and the metrics count what happened.
func TestOperationalEndpoints(t *testing.T) {
	n := startNode(t, t.TempDir())
	key := n.createApp("web")
	a := n.post(key, "application/json", []byte("["+exPageview+","+exCTA+"]"))
	n.get(fmt.Sprintf("/v1/events?min_seq=%d", a.Seq))
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/"} {
		if st, b, _ := do(t, "GET", n.URL+path, "", "", nil); st != 200 {
			t.Fatalf("GET %s: %d %s", path, st, b)
		}
	}
	_, metrics, _ := do(t, "GET", n.URL+"/metrics", "", "", nil)
	for _, want := range []string{"theeye_ingest_events_total 2", "theeye_indexer_indexed_seq 2", "theeye_raft_applied_seq 2", `theeye_http_requests_total{method="POST",route="/v1/events",status="202"} 1`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	_, doc, _ := do(t, "GET", n.URL+"/openapi.json", "", "", nil)
	var spec struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	mustJSON(t, doc, &spec)
	for _, p := range []string{"/v1/events", "/v1/sessions/{session_id}/events", "/v1/errors", "/v1/apps", "/v1/keys", "/v1/cluster"} {
		if _, ok := spec.Paths[p]; !ok || spec.OpenAPI != "3.1.0" {
			t.Errorf("openapi.json (%s) lacks %s", spec.OpenAPI, p)
		}
	}
	st, b, _ := do(t, "GET", n.URL+"/v1/cluster", testAdminKey, "", nil)
	var cl clusterView
	mustJSON(t, b, &cl)
	if st != 200 || cl.Leader != "n1" || len(cl.Nodes) != 1 || cl.Nodes[0].State != "leader" || *cl.Nodes[0].AppliedSeq != 2 || *cl.Nodes[0].IndexedSeq != 2 {
		t.Fatalf("cluster: %d %s", st, b)
	}
}

// TestWritableWhenListening: the README's walk-through sends its first
// write right after `make run` prints where it listens. A new single node
// must have elected itself by then (it used to answer 503 "no leader yet"
// for about a second), and so must one restarted on its data.
func TestWritableWhenListening(t *testing.T) {
	p := newProc(t, t.TempDir())
	t.Cleanup(p.kill9)
	for round, name := range []string{"web", "shop"} {
		p.startNoWait()
		if err := p.WaitListening(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		if st, b, _ := do(t, "POST", p.URL+"/v1/apps", testAdminKey, "application/json", []byte(`{"name":"`+name+`"}`)); st != 201 {
			t.Fatalf("round %d: first write after the listening line: %d %s", round, st, b)
		}
		p.stop()
	}
}
