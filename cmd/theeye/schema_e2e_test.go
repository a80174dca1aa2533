package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const formSchemaV1 = `{"type":"object","required":["form"],"properties":{"form":{"type":"object",
 "required":["first_name"],"properties":{"first_name":{"type":"string"}}}}}`

type errRecord struct {
	Seq      uint64 `json:"seq"`
	ID       string `json:"id"`
	App      string `json:"app"`
	Category string
	Reasons  []struct{ Code, Field, Message string } `json:"reasons"`
	Event    json.RawMessage                         `json:"event"`
}

type errPage = listPage[errRecord]

// errors queries an error list route.
func (p *proc) errors(path string) errPage { p.t.Helper(); return getPage[errRecord](p, path) }

type schemaJSON struct {
	Category     string          `json:"category"`
	Name         string          `json:"name"`
	Version      int             `json:"version"`
	Schema       json.RawMessage `json:"schema"`
	EffectiveSeq uint64          `json:"effective_seq"`
}

func (p *proc) putSchema(category, name, schema string) schemaJSON {
	p.t.Helper()
	body, _ := json.Marshal(map[string]any{"category": category, "name": name, "schema": json.RawMessage(schema)})
	var s schemaJSON
	p.call("POST", "/v1/schemas", testAdminKey, "application/json", body, 201, &s)
	return s
}

type revalidateResp struct {
	ID       uint64 `json:"id"`
	AtSeq    uint64 `json:"at_seq"`
	Status   string `json:"status"`
	Checked  uint64 `json:"checked"`
	Accepted uint64 `json:"accepted"`
	Failing  uint64 `json:"failing"`
}

func (p *proc) revalidate(body string) revalidateResp {
	p.t.Helper()
	var r revalidateResp
	p.call("POST", "/v1/errors/revalidate", testAdminKey, "application/json", []byte(body), 200, &r)
	return r
}

func formSubmit(id, first string) string {
	return formSubmitAt(id, first, "2021-01-01 09:15:27.243860")
}

func formSubmitAt(id, first, ts string) string {
	idf := ""
	if id != "" {
		idf = `"id":"` + id + `",`
	}
	return `{` + idf + `"session_id":"f","category":"form interaction","name":"submit","data":{"host":"www.consumeraffairs.com","path":"/","form":{"first_name":` +
		first + `,"last_name":"Doe"}},"timestamp":"` + ts + `"}`
}

// TestSchemaRegistryEveryReasonCode: with --unknown-types=reject, every
// reason code the indexer can produce comes out of a real event sent over
// HTTP (invalid_json cannot: the API refuses a body that is not JSON before
// anything is stored), with its field and a message.
func TestSchemaRegistryEveryReasonCode(t *testing.T) {
	n := startNode(t, t.TempDir(), "--unknown-types", "reject", "--max-event-age", "8760h")
	key := n.createApp("web")

	// A schema that does not compile: 400 with the compiler's message.
	st, b, _ := do(t, "POST", n.URL+"/v1/schemas", testAdminKey, "application/json",
		[]byte(`{"category":"form interaction","name":"submit","schema":{"type":12}}`))
	if st != 400 || !bytes.Contains(b, []byte("does not compile")) {
		t.Fatalf("bad schema: %d %s, want 400 with the compiler's message", st, b)
	}
	st, b, _ = do(t, "POST", n.URL+"/v1/schemas", testAdminKey, "application/json",
		[]byte(`{"category":"form interaction","name":"submit","schema":{"$ref":"https://example.com/s.json"}}`))
	if st != 400 {
		t.Fatalf("remote $ref: %d %s, want 400", st, b)
	}
	if s := n.putSchema("form interaction", "submit", formSchemaV1); s.Version != 1 {
		t.Fatalf("registered %+v", s)
	}
	n.putSchema("page interaction", "pageview", `{"type":"object","required":["host","path"]}`)
	n.putSchema("c", "n", `true`)

	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02 15:04:05")
	recent := time.Now().UTC().Add(-time.Hour).Format("2006-01-02 15:04:05")
	cases := []struct{ raw, code, field, msg string }{
		{`{"category":"c","name":"n","data":{"a":1},"timestamp":"` + recent + `"}`, "missing_field", "/session_id", ""},
		{`{"session_id":"s","category":7,"name":"n","data":{"a":1},"timestamp":"` + recent + `"}`, "wrong_type", "/category", ""},
		{`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"` + recent + `","seq":1}`, "reserved_field", "/seq", ""},
		{`{"session_id":"s","category":"c","name":"n","data":{},"timestamp":"` + recent + `"}`, "empty_data", "/data", ""},
		{`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"31/12/2020"}`, "invalid_timestamp", "/timestamp", ""},
		{`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"` + future + `"}`, "timestamp_in_future", "/timestamp", ""},
		{`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2001-01-01 00:00:00"}`, "timestamp_too_old", "/timestamp", ""},
		{formSubmitAt("", "12", recent), "schema_violation", "/data/form/first_name", "type: want string, got number"},
		{`{"session_id":"s","category":"form interaction","name":"submit","data":{"form":{}},"timestamp":"` + recent + `"}`,
			"schema_violation", "/data/form/first_name", `required: missing property "first_name"`},
		{`{"session_id":"s","category":"video","name":"play","data":{"a":1},"timestamp":"` + recent + `"}`, "unknown_event_type", "/name", ""},
		{`{"id":"dup-1","session_id":"s","category":"c","name":"n","data":{"a":2},"timestamp":"` + recent + `"}`, "duplicate_id_conflict", "/id", "seq"},
	}
	first := `{"id":"dup-1","session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"` + recent + `"}`
	n.post(key, "application/json", []byte(first))
	n.post(key, "application/json", []byte(first)) // an identical retry: a silent duplicate
	var lines []string
	for _, c := range cases {
		lines = append(lines, c.raw)
	}
	a := n.post(key, "application/x-ndjson", []byte(strings.Join(lines, "\n")))
	pg := n.errors(fmt.Sprintf("/v1/errors?min_seq=%d", a.Seq))
	if len(pg.Errors) != len(cases) {
		t.Fatalf("%d errors, want %d: %+v", len(pg.Errors), len(cases), pg.Errors)
	}
	for i, c := range cases {
		e := pg.Errors[i]
		r := e.Reasons[0]
		if r.Code != c.code || r.Field != c.field || r.Message == "" || !strings.Contains(r.Message, c.msg) {
			t.Errorf("case %d: reason %+v, want %s at %s (%q)", i, r, c.code, c.field, c.msg)
		}
	}
	// Only the first dup-1 is an event; its retry is not an error either.
	if evs := n.get("/v1/events?category=c&name=n"); len(evs.Events) != 1 || evs.Events[0].ID != "dup-1" {
		t.Fatalf("dup-1: %+v", evs.Events)
	}

	// Filters and the summary.
	if got := n.errors("/v1/errors?category=form%20interaction&name=submit"); len(got.Errors) != 2 {
		t.Errorf("category+name filter: %d errors, want 2", len(got.Errors))
	}
	if got := n.errors("/v1/errors?reason=unknown_event_type&app=web"); len(got.Errors) != 1 {
		t.Errorf("reason+app filter: %d errors, want 1", len(got.Errors))
	}
	if got := n.errors("/v1/errors?reason=schema_violation&limit=1"); len(got.Errors) != 1 || got.NextCursor == nil {
		t.Errorf("first page: %+v", got)
	} else if next := n.errors("/v1/errors?reason=schema_violation&limit=1&cursor=" + *got.NextCursor); len(next.Errors) != 1 || next.Errors[0].Seq <= got.Errors[0].Seq {
		t.Errorf("second page: %+v", next)
	}
	_, b, h := do(t, "GET", n.URL+"/v1/errors?reason=schema_violation", testAdminKey, "", nil, "Accept", "application/x-ndjson")
	if !strings.HasPrefix(h.Get("Content-Type"), "application/x-ndjson") || bytes.Count(b, []byte("\n")) != 2 {
		t.Errorf("NDJSON export: %s", b)
	}
	st, b, _ = do(t, "GET", n.URL+"/v1/errors/summary?from=2000-01-01T00:00:00Z", testAdminKey, "", nil)
	var sum struct {
		Total    uint64            `json:"total"`
		ByReason map[string]uint64 `json:"by_reason"`
		ByType   []struct {
			Category, Name string
			Count          uint64
		} `json:"by_type"`
	}
	mustJSON(t, b, &sum)
	if st != 200 || sum.Total != uint64(len(cases)) || sum.ByReason["schema_violation"] != 2 || sum.ByReason["duplicate_id_conflict"] != 1 ||
		len(sum.ByType) == 0 || sum.ByType[0].Category != "c" || sum.ByType[0].Count != 7 {
		t.Errorf("summary: %d %s", st, b)
	}
	// The reason counter exists for every code.
	_, metrics, _ := do(t, "GET", n.URL+"/metrics", "", "", nil)
	if !bytes.Contains(metrics, []byte(`theeye_indexer_errors_total{reason="duplicate_id_conflict"} 1`)) {
		t.Errorf("metrics lack the duplicate_id_conflict counter")
	}
}

// TestSchemaVersionBoundaryAndRevalidate: an event is judged by the
// version in force at its seq; a revalidation after a fix turns the
// failures that now pass into events, once.
func TestSchemaVersionBoundaryAndRevalidate(t *testing.T) {
	n := startNode(t, t.TempDir())
	key := n.createApp("web")
	v1 := n.putSchema("form interaction", "submit", formSchemaV1)
	before := n.post(key, "application/json", []byte(formSubmit("", "12"))) // judged by v1: fails
	good := n.post(key, "application/json", []byte(formSubmit("", `"John"`)))
	v2 := n.putSchema("form interaction", "submit", `{"type":"object","required":["form"]}`)
	if v2.Version != 2 || v2.EffectiveSeq != good.Seq || v1.EffectiveSeq != 0 {
		t.Fatalf("v1 %+v, v2 %+v (last seq %d)", v1, v2, good.Seq)
	}
	after := n.post(key, "application/json", []byte(formSubmit("", "12"))) // judged by v2: passes
	pg := n.errors(fmt.Sprintf("/v1/errors?min_seq=%d", after.Seq))
	if len(pg.Errors) != 1 || pg.Errors[0].Seq != before.Seq {
		t.Fatalf("errors %+v, want only seq %d", pg.Errors, before.Seq)
	}
	if evs := n.get("/v1/sessions/f/events"); !slices.Equal(eventSeqs(evs.Events), []uint64{good.Seq, after.Seq}) {
		t.Fatalf("events %v, want [%d %d]", eventSeqs(evs.Events), good.Seq, after.Seq)
	}
	st, b, _ := do(t, "GET", n.URL+"/v1/schemas?category=form%20interaction&name=submit", testAdminKey, "", nil)
	var list struct{ Schemas []schemaJSON }
	mustJSON(t, b, &list)
	if st != 200 || len(list.Schemas) != 2 || list.Schemas[1].Version != 2 {
		t.Fatalf("versions: %d %s", st, b)
	}

	r := n.revalidate(`{"from":"2000-01-01T00:00:00Z","reason":"schema_violation"}`)
	if r.Status != "done" || r.Checked != 1 || r.Accepted != 1 || r.Failing != 0 || r.AtSeq != after.Seq {
		t.Fatalf("revalidate: %+v", r)
	}
	if pg := n.errors("/v1/errors"); len(pg.Errors) != 0 {
		t.Fatalf("errors after revalidate: %+v", pg.Errors)
	}
	if evs := n.get("/v1/sessions/f/events"); !slices.Equal(eventSeqs(evs.Events), []uint64{before.Seq, good.Seq, after.Seq}) {
		t.Fatalf("events after revalidate %v", eventSeqs(evs.Events))
	}
	if r := n.revalidate(`{}`); r.Checked != 0 || r.Accepted != 0 {
		t.Fatalf("second revalidate: %+v", r)
	}
	// Verdicts survive a restart (nothing re-judged differently).
	n.stop()
	n.restart()
	if evs := n.get("/v1/sessions/f/events"); len(evs.Events) != 3 {
		t.Fatalf("after restart: %v", eventSeqs(evs.Events))
	}
}

func eventSeqs(evs []event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// TestRevalidateCluster: three processes; schemas registered and a
// revalidation requested through followers; every node ends with the same
// events and the same errors.
func TestRevalidateCluster(t *testing.T) {
	c := startCluster(t, 3, false)
	key := c.nodes[1].createApp("web")
	c.nodes[2].putSchema("form interaction", "submit", formSchemaV1) // a follower: forwarded
	var lines []string
	for i := range 30 {
		first := `"ok"`
		if i%3 == 0 {
			first = "12"
		}
		lines = append(lines, formSubmit(fmt.Sprintf("e%d", i), first))
	}
	c.nodes[1].post(key, "application/x-ndjson", []byte(strings.Join(lines, "\n")))
	c.nodes[2].putSchema("form interaction", "submit", `{"type":"object","properties":{"form":{"properties":{"first_name":{"type":["string","number"]}}}}}`)
	for i := range 6 { // judged by v2, interleaved with the revalidation below
		c.nodes[i%3].post(key, "application/json", []byte(formSubmit(fmt.Sprintf("late%d", i), `true`)))
	}
	r := c.nodes[1].revalidate(`{"category":"form interaction","name":"submit"}`)
	if r.Status != "done" || r.Accepted != 10 || r.Failing != 6 || r.Checked != 16 {
		t.Fatalf("revalidate: %+v", r)
	}
	last := c.nodes[0].post(key, "application/json", []byte(formSubmit("last", `"x"`)))
	var refEvents, refErrors string
	for i, p := range c.nodes {
		evs := p.exportAll(fmt.Sprintf("/v1/events?min_seq=%d&wait=30s", last.Seq))
		_, b, _ := do(t, "GET", p.URL+fmt.Sprintf("/v1/errors?min_seq=%d&wait=30s", last.Seq), testAdminKey, "", nil, "Accept", "application/x-ndjson")
		evJSON, _ := json.Marshal(evs)
		if len(evs) != 31 || bytes.Count(b, []byte("\n")) != 6 {
			t.Fatalf("n%d: %d events, errors %s", i+1, len(evs), b)
		}
		if i == 0 {
			refEvents, refErrors = string(evJSON), string(b)
			continue
		}
		if string(evJSON) != refEvents {
			t.Errorf("n%d holds other events than n1", i+1)
		}
		if string(b) != refErrors {
			t.Errorf("n%d holds other errors than n1:\n%s\nn1:\n%s", i+1, b, refErrors)
		}
	}
}
