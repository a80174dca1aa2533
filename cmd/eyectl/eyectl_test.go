package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye/client"
	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// The brief's three examples, with the session id left to fill in.
const (
	exPageview = `{"session_id": %q, "category": "page interaction", "name": "pageview", "data": {"host": "www.consumeraffairs.com", "path": "/"}, "timestamp": "2021-01-01 09:15:27.243860"}`
	exCTA      = `{"session_id": %q, "category": "page interaction", "name": "cta click", "data": {"host": "www.consumeraffairs.com", "path": "/", "element": "chat bubble"}, "timestamp": "2021-01-01 09:15:28.243860"}`
	exSubmit   = `{"session_id": %q, "category": "form interaction", "name": "submit", "data": {"host": "www.consumeraffairs.com", "path": "/", "form": {"first_name": "John", "last_name": "Doe"}}, "timestamp": "2021-01-01 09:15:29.243860"}`
)

func examples(session string) []string {
	return []string{fmt.Sprintf(exPageview, session), fmt.Sprintf(exCTA, session), fmt.Sprintf(exSubmit, session)}
}

type result struct {
	code           int
	stdout, stderr string
}

// eyectl runs the command line in-process with THEEYE_SERVER set to the
// shared node and THEEYE_KEY to key (env overrides either).
func eyectl(t *testing.T, key, stdin string, args ...string) result {
	t.Helper()
	return eyectlCtx(t.Context(), t, key, stdin, nil, args...)
}

func eyectlCtx(ctx context.Context, t *testing.T, key, stdin string, stdout *syncBuffer, args ...string) result {
	t.Helper()
	env := map[string]string{"THEEYE_SERVER": shared.URL, "THEEYE_KEY": key}
	if stdout == nil {
		stdout = &syncBuffer{}
	}
	var stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), stdout, &stderr, func(k string) string { return env[k] })
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) require(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

// createApp makes an app named after the test and returns its name and
// ingest key.
func createApp(t *testing.T) (string, string) {
	t.Helper()
	var nonce [4]byte
	rand.Read(nonce[:])
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + hex.EncodeToString(nonce[:])
	r := eyectl(t, adminKey, "", "apps", "create", name, "-o", "json").require(t, 0)
	var out struct {
		ID  string `json:"id"`
		Key struct {
			Secret string `json:"secret"`
		} `json:"key"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.ID != name || out.Key.Secret == "" {
		t.Fatalf("apps create: %v %s", err, r.stdout)
	}
	return name, out.Key.Secret
}

type summary struct {
	Sent     uint64  `json:"sent"`
	Rejected uint64  `json:"rejected"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"events_per_second"`
	LastSeq  uint64  `json:"last_seq"`
}

func parseSummary(t *testing.T, r result) summary {
	t.Helper()
	var s summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("summary %q: %v", r.stdout, err)
	}
	return s
}

// storedEvent is an event as eyectl prints it: the client's own type reads it.
type storedEvent = client.StoredEvent

func ndjsonLines(t *testing.T, s string) []storedEvent {
	t.Helper()
	var out []storedEvent
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var e storedEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSendAndQueryBack: send the brief's examples from an NDJSON file with
// an app's key, then read them back the three ways analysts ask: by
// session, by category, by time range.
func TestSendAndQueryBack(t *testing.T) {
	app, key := createApp(t)
	session := "sess-" + app
	file := writeFile(t, "events.ndjson", []byte(strings.Join(examples(session), "\n")+"\n"))
	s := parseSummary(t, eyectl(t, key, "", "send", file).require(t, 0))
	if s.Sent != 3 || s.Rejected != 0 || s.LastSeq == 0 {
		t.Fatalf("summary %+v", s)
	}
	minSeq := fmt.Sprint(s.LastSeq)

	r := eyectl(t, adminKey, "", "events", "--session", session, "-o", "json", "--min-seq", minSeq).require(t, 0)
	var evs []storedEvent
	if err := json.Unmarshal([]byte(r.stdout), &evs); err != nil {
		t.Fatalf("json output %q: %v", r.stdout, err)
	}
	names := make([]string, len(evs))
	for i, e := range evs {
		names[i] = e.Name
		if e.App != app || e.SessionID != session || e.ID == "" || e.Seq == 0 {
			t.Errorf("event %d: %+v", i, e)
		}
	}
	if !slices.Equal(names, []string{"pageview", "cta click", "submit"}) {
		t.Fatalf("session events %v", names)
	}
	if !evs[0].Timestamp.Equal(time.Date(2021, 1, 1, 9, 15, 27, 243860000, time.UTC)) {
		t.Errorf("timestamp %s", evs[0].Timestamp)
	}

	r = eyectl(t, adminKey, "", "events", "--category", "page interaction", "--app", app, "--desc").require(t, 0)
	got := ndjsonLines(t, r.stdout) // ndjson: the default in a pipe
	if len(got) != 2 || got[0].Name != "cta click" || got[1].Name != "pageview" {
		t.Fatalf("category, newest first: %+v", got)
	}
	r = eyectl(t, adminKey, "", "events", "--category", "form interaction", "--name", "submit", "--app", app).require(t, 0)
	if got := ndjsonLines(t, r.stdout); len(got) != 1 || got[0].Name != "submit" {
		t.Fatalf("category and name: %+v", got)
	}

	r = eyectl(t, adminKey, "", "events", "--app", app, "--from", "2021-01-01 09:15:28", "--to", "2021-01-01T09:15:30Z").require(t, 0)
	if got := ndjsonLines(t, r.stdout); len(got) != 2 || got[0].Name != "cta click" || got[1].Name != "submit" {
		t.Fatalf("time range: %+v", got)
	}
	r = eyectl(t, adminKey, "", "events", "--app", app, "--from", "2021-01-01", "--limit", "1").require(t, 0)
	if got := ndjsonLines(t, r.stdout); len(got) != 1 {
		t.Fatalf("--limit 1: %+v", got)
	}
}

// TestSendGzipArrayStdin: a gzipped JSON array on stdin; an element that is
// not an object is reported and skipped, the others are stored, exit 2.
func TestSendGzipArrayStdin(t *testing.T) {
	app, key := createApp(t)
	session := "sess-" + app
	ex := examples(session)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, "[%s,\n 42,\n%s,%s]", ex[0], ex[1], ex[2])
	zw.Close()
	r := eyectl(t, key, gz.String(), "send", "-", "--rate", "1000", "--batch-size", "2").require(t, exitRefused)
	s := parseSummary(t, r)
	if s.Sent != 3 || s.Rejected != 1 {
		t.Fatalf("summary %+v", s)
	}
	if !strings.Contains(r.stderr, "eyectl: stdin: element 1: not a JSON object; skipped\n") ||
		!strings.Contains(r.stderr, "1 of 4 events were not stored") {
		t.Errorf("stderr %q", r.stderr)
	}
	r = eyectl(t, adminKey, "", "events", "--session", session, "--min-seq", fmt.Sprint(s.LastSeq)).require(t, 0)
	if got := ndjsonLines(t, r.stdout); len(got) != 3 {
		t.Fatalf("%d events stored, want 3", len(got))
	}
}

// TestSendRate: --rate throttles.
func TestSendRate(t *testing.T) {
	_, key := createApp(t)
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `{"session_id":"rate","category":"c","name":"n","data":{"i":%d},"timestamp":"2021-01-01T00:00:00Z"}`+"\n", i)
	}
	// The shared node may still be indexing an earlier test's load and
	// push back (429 overloaded, Retry-After ~1 s): retry as long as that
	// takes rather than the default two times.
	s := parseSummary(t, eyectl(t, key, b.String(), "--retries", "30", "send", "-", "--rate", "200").require(t, 0))
	// A burst of 20, then 200/s: the last 20 take at least 100ms.
	if s.Sent != 40 || s.Seconds < 0.09 {
		t.Fatalf("summary %+v: want 40 events in at least 90ms", s)
	}
}

// TestTableOutput: -o table prints a header and aligned columns.
func TestTableOutput(t *testing.T) {
	app, key := createApp(t)
	session := "sess-" + app
	s := parseSummary(t, eyectl(t, key, strings.Join(examples(session), "\n"), "send", "-").require(t, 0))
	r := eyectl(t, adminKey, "", "events", "--session", session, "-o", "table", "--min-seq", fmt.Sprint(s.LastSeq)).require(t, 0)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("table %q", r.stdout)
	}
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"SEQ", "TIMESTAMP", "SESSION", "CATEGORY", "NAME", "APP", "DATA"}) {
		t.Errorf("header %q", lines[0])
	}
	col := strings.Index(lines[0], "CATEGORY")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "page interaction") && !strings.HasPrefix(l[col:], "form interaction") {
			t.Errorf("row not aligned under CATEGORY: %q", l)
		}
	}
	r = eyectl(t, adminKey, "", "apps", "list", "-o", "table").require(t, 0)
	if !strings.HasPrefix(r.stdout, "ID ") || !strings.Contains(r.stdout, app) {
		t.Errorf("apps table %q", r.stdout)
	}
	r = eyectl(t, adminKey, "", "cluster", "status", "-o", "table").require(t, 0)
	if !strings.HasPrefix(r.stdout, "leader: n1\nID ") {
		t.Errorf("cluster table %q", r.stdout)
	}
}

// TestErrorMessages: each failure is one line saying what to do, with its
// exit code.
func TestErrorMessages(t *testing.T) {
	app, ingestKey := createApp(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		key    string
		args   []string
		code   int
		stderr string
	}{
		{"bad key", "eye_not_a_key", []string{"events", "--session", "x"}, exitRefused,
			"eyectl: the server refused the key (401 unauthorized: unknown or revoked key); set --key or THEEYE_KEY to a valid key\n"},
		{"no key", "", []string{"apps", "list"}, exitRefused, "eyectl: the server refused the key (401 unauthorized: missing Authorization header"},
		{"missing scope", ingestKey, []string{"events", "--session", "x"}, exitRefused, "eyectl: the key lacks the scope for this (403 forbidden"},
		{"unreachable", adminKey, []string{"events", "--server", fmt.Sprintf("127.0.0.1:%d", port), "--session", "x"}, exitUnreachable,
			fmt.Sprintf("eyectl: cannot reach http://127.0.0.1:%d: connection refused; is theeye running? set --server or THEEYE_SERVER\n", port)},
		{"bad time", adminKey, []string{"events", "--from", "yesterday"}, exitUsage, `eyectl: --from "yesterday": want RFC 3339`},
		{"to before from", adminKey, []string{"events", "--from", "2021-01-02", "--to", "2021-01-01"}, exitUsage, "eyectl: --to (2021-01-01T00:00:00Z) must be after --from"},
		{"name without category", adminKey, []string{"events", "--name", "submit"}, exitUsage, "eyectl: --name needs --category"},
		{"unknown flag", adminKey, []string{"events", "--colour"}, exitUsage, "eyectl: unknown flag: --colour"},
		{"bad output", adminKey, []string{"apps", "list", "-o", "xml"}, exitUsage, `eyectl: --output "xml": want table, json or ndjson`},
		{"no file", ingestKey, []string{"send", "/nonexistent/events.ndjson"}, exitUsage, "eyectl: open input: open /nonexistent/events.ndjson: no such file or directory"},
		{"no file argument", ingestKey, []string{"send"}, exitUsage, "eyectl: eyectl send needs one FILE argument"},
		{"conflict", adminKey, []string{"apps", "create", app}, exitRefused, `eyectl: the server refused the request (409 conflict: an app named "` + app + `" already exists)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := eyectl(t, tc.key, "", tc.args...).require(t, tc.code)
			if !strings.HasPrefix(r.stderr, tc.stderr) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line starting %q", r.stderr, tc.stderr)
			}
			if tc.code != 0 && r.stdout != "" {
				t.Errorf("stdout %q on failure", r.stdout)
			}
		})
	}
}

// TestErrorsCommand: an event from the future is listed by eyectl errors.
func TestErrorsCommand(t *testing.T) {
	app, key := createApp(t)
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	in := `{"session_id":"fut","category":"c","name":"n","data":{"a":1},"timestamp":"` + future + `"}`
	s := parseSummary(t, eyectl(t, key, in, "send", "-").require(t, 0))
	r := eyectl(t, adminKey, "", "errors", "--reason", "timestamp_in_future", "--app", app, "--min-seq", fmt.Sprint(s.LastSeq)).require(t, 0)
	var rec struct {
		Seq     uint64 `json:"seq"`
		Reasons []struct {
			Code, Field string
		} `json:"reasons"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || rec.Seq != s.LastSeq || len(rec.Reasons) != 1 || rec.Reasons[0].Code != "timestamp_in_future" {
		t.Fatalf("errors output %q: %v", r.stdout, err)
	}
	r = eyectl(t, adminKey, "", "errors", "--app", app, "-o", "table").require(t, 0)
	if !strings.Contains(r.stdout, "timestamp_in_future@/timestamp") {
		t.Errorf("errors table %q", r.stdout)
	}
}

// TestKeysAndCluster: keys create, list and revoke; cluster status; schemas
// once the server has them.
func TestKeysAndCluster(t *testing.T) {
	app, _ := createApp(t)
	r := eyectl(t, adminKey, "", "keys", "create", "--name", app+"-analysts", "--scope", "read", "-o", "json").require(t, 0)
	var k struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.ID == "" || k.Secret == "" {
		t.Fatalf("keys create: %q %v", r.stdout, err)
	}
	r = eyectl(t, adminKey, "", "keys", "list").require(t, 0)
	if !strings.Contains(r.stdout, `"id":"`+k.ID+`"`) || strings.Contains(r.stdout, k.Secret) {
		t.Errorf("keys list %q", r.stdout)
	}
	eyectl(t, k.Secret, "", "events", "--limit", "1").require(t, 0)
	eyectl(t, adminKey, "", "keys", "revoke", k.ID).require(t, 0)
	waitFor(t, 10*time.Second, "the revoked key to be refused", func() error {
		if r := eyectl(t, k.Secret, "", "events", "--limit", "1"); r.code != exitRefused {
			return fmt.Errorf("exit %d: %s", r.code, r.stderr)
		}
		return nil
	})
	eyectl(t, adminKey, "", "keys", "create", "--name", "x", "--scope", "write").require(t, exitUsage)

	r = eyectl(t, adminKey, "", "cluster", "status", "-o", "json").require(t, 0)
	var cl struct {
		Leader string
		Nodes  []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &cl); err != nil || cl.Leader != "n1" || len(cl.Nodes) != 1 {
		t.Errorf("cluster status %q %v", r.stdout, err)
	}

	schema := writeFile(t, "s.json", []byte(`{"type":"object","required":["path"]}`))
	r = eyectl(t, adminKey, "", "schemas", "put", "--category", "page interaction", "--name", "pageview", schema)
	if r.code == exitRefused && strings.Contains(r.stderr, "does not have that route") {
		t.Skipf("the server has no /v1/schemas yet: %s", r.stderr)
	}
	r.require(t, 0)
	r = eyectl(t, adminKey, "", "schemas", "list").require(t, 0)
	if !strings.Contains(r.stdout, "pageview") {
		t.Errorf("schemas list %q", r.stdout)
	}
}

// TestTLSServer: against a node serving HTTPS with a private CA, eyectl
// trusts it with --ca (or THEEYE_CA) and refuses it without.
func TestTLSServer(t *testing.T) {
	caFile, certFile, keyFile, _, err := theeyetest.WritePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := &theeyetest.Node{Bin: theeyeBin, DataDir: t.TempDir(), AdminKey: adminKey, HTTPS: true,
		Extra: []string{"--tls-cert", certFile, "--tls-key", keyFile, "--tls-ca", caFile}}
	t.Cleanup(n.Kill9)
	if err := n.StartNoWait(); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitListening(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	runWith := func(env map[string]string, args ...string) result {
		var stdout syncBuffer
		var stderr bytes.Buffer
		code := run(t.Context(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
		return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}
	env := map[string]string{"THEEYE_SERVER": n.URL, "THEEYE_KEY": adminKey}
	waitFor(t, 30*time.Second, "eyectl --ca over https", func() error {
		if r := runWith(env, "--retries", "0", "--ca", caFile, "cluster", "status", "-o", "json"); r.code != 0 {
			return fmt.Errorf("exit %d: %s", r.code, r.stderr)
		}
		return nil
	})
	env["THEEYE_CA"] = caFile
	runWith(env, "--retries", "0", "apps", "list").require(t, 0)
	delete(env, "THEEYE_CA")
	if r := runWith(env, "--retries", "0", "apps", "list"); r.code != exitUnreachable || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("without --ca: exit %d %s, want a certificate error", r.code, r.stderr)
	}
}

// TestRevalidate: eyectl revalidate starts a revalidation and follows it
// to its end; a failure that passes today's schema becomes an event.
func TestRevalidate(t *testing.T) {
	app, key := createApp(t)
	category := "reval " + app
	strict := writeFile(t, "strict.json", []byte(`{"type":"object","required":["never"]}`))
	eyectl(t, adminKey, "", "schemas", "put", "--category", category, "--name", "n", strict).require(t, 0)
	ev := fmt.Sprintf(`{"session_id":%q,"category":%q,"name":"n","data":{"a":1},"timestamp":"2021-01-01T00:00:00Z"}`, app, category)
	r := eyectl(t, key, ev, "send", "-", "-o", "json").require(t, 0)
	var sent struct {
		LastSeq uint64 `json:"last_seq"`
	}
	json.Unmarshal([]byte(r.stdout), &sent)
	waitFor(t, 30*time.Second, "the failure to be indexed", func() error {
		r := eyectl(t, adminKey, "", "errors", "--reason", "schema_violation", "--min-seq", fmt.Sprint(sent.LastSeq), "-o", "ndjson")
		if r.code != 0 || !strings.Contains(r.stdout, category) {
			return fmt.Errorf("exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		return nil
	})
	loose := writeFile(t, "loose.json", []byte(`{"type":"object"}`))
	eyectl(t, adminKey, "", "schemas", "put", "--category", category, "--name", "n", loose).require(t, 0)
	r = eyectl(t, adminKey, "", "revalidate", "--category", category, "--name", "n", "-o", "json").require(t, 0)
	var res struct {
		Status   string `json:"status"`
		Checked  int    `json:"checked"`
		Accepted int    `json:"accepted"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Status != "done" || res.Checked != 1 || res.Accepted != 1 {
		t.Fatalf("revalidate: %q %v", r.stdout, err)
	}
	if r := eyectl(t, adminKey, "", "events", "--session", app, "-o", "ndjson").require(t, 0); !strings.Contains(r.stdout, category) {
		t.Fatalf("the revalidated event is not among the session's events: %q", r.stdout)
	}
	eyectl(t, adminKey, "", "revalidate", "--name", "n").require(t, exitUsage)
}
