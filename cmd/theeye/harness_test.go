package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// The end-to-end tests drive the real theeye binary, built once here, over
// HTTP on loopback (cmd/theeye/theeyetest runs the processes).
var theeyeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "theeye-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if theeyeBin, err = theeyetest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testAdminKey = "eye_admin_test_key"

// proc is one theeye process driven by a test.
type proc struct {
	*theeyetest.Node
	t *testing.T
}

// newProc prepares a process with its data in dataDir; start runs it.
func newProc(t *testing.T, dataDir string, extra ...string) *proc {
	return &proc{t: t, Node: &theeyetest.Node{Bin: theeyeBin, DataDir: dataDir, AdminKey: testAdminKey, Extra: extra}}
}

// startNode starts theeye on loopback ports the kernel picks, with its
// data in dataDir, and waits until it is ready; it is killed when the test
// ends.
func startNode(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	p := newProc(t, dataDir, extra...)
	t.Cleanup(p.kill9)
	p.start()
	return p
}

// start runs the process (again after a stop or kill: same ports and data
// dir) and waits until it is ready.
func (p *proc) start() {
	p.t.Helper()
	if err := p.Node.Start(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *proc) startNoWait() {
	p.t.Helper()
	if err := p.Node.StartNoWait(); err != nil {
		p.t.Fatal(err)
	}
}

// kill9 kills the process with SIGKILL: no shutdown code runs.
func (p *proc) kill9() { p.Node.Kill9() }

// stop sends SIGTERM and requires a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.Node.Stop(60 * time.Second); err != nil {
		p.t.Fatal(err)
	}
}

// restart starts the process again on the same ports and data dir.
func (p *proc) restart() {
	p.t.Helper()
	p.start()
}

// alive reports whether the process is running.
func (p *proc) alive() bool { return p.Node.Alive() }

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := theeyetest.ClosedPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// waitFor is theeyetest.Poll for a test: it fails the test when fn does
// not return nil within timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	if err := theeyetest.Poll(timeout, fn); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// do sends a request and returns the status and body.
func do(t *testing.T, method, url, key, contentType string, body []byte, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, b, resp.Header
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// call sends a request with key, requires status want, and decodes the
// JSON answer into v.
func (p *proc) call(method, path, key, contentType string, body []byte, want int, v any) {
	p.t.Helper()
	st, b, _ := do(p.t, method, p.URL+path, key, contentType, body)
	if st != want {
		p.t.Fatalf("%s %s: %d %s, want %d", method, path, st, b, want)
	}
	mustJSON(p.t, b, v)
}

// createApp creates an app and returns its ingest key.
func (p *proc) createApp(name string) string {
	p.t.Helper()
	var resp struct {
		Key struct {
			Secret string `json:"secret"`
		} `json:"key"`
	}
	p.call("POST", "/v1/apps", testAdminKey, "application/json", []byte(`{"name":"`+name+`"}`), 201, &resp)
	return resp.Key.Secret
}

type ack struct {
	Accepted int    `json:"accepted"`
	Seq      uint64 `json:"seq"`
}

// post sends events and requires a 202. A 429 (the node pushing back,
// nothing of the request stored) is sent again, as a client would, for up
// to a minute.
func (p *proc) post(key, contentType string, body []byte) ack {
	p.t.Helper()
	var a ack
	err := theeyetest.Poll(time.Minute, func() error {
		st, b, _ := do(p.t, "POST", p.URL+"/v1/events", key, contentType, body)
		switch st {
		case http.StatusAccepted:
			return json.Unmarshal(b, &a)
		case http.StatusTooManyRequests:
			return fmt.Errorf("429 %s", b)
		}
		return theeyetest.Stop(fmt.Errorf("%d %s, want 202", st, b))
	})
	if err != nil {
		p.t.Fatalf("POST /v1/events: %v", err)
	}
	return a
}

type event struct {
	Seq        uint64          `json:"seq"`
	ID         string          `json:"id"`
	App        string          `json:"app"`
	SessionID  string          `json:"session_id"`
	Category   string          `json:"category"`
	Name       string          `json:"name"`
	Data       json.RawMessage `json:"data"`
	Timestamp  string          `json:"timestamp"`
	ReceivedAt string          `json:"received_at"`
}

// listPage is a page of a list route: its items and next cursor.
type listPage[T any] struct {
	Events     []T     `json:"events"`
	Errors     []T     `json:"errors"`
	NextCursor *string `json:"next_cursor"`
}

type page = listPage[event]

// getPage queries a list route with the admin key and requires a 200.
func getPage[T any](p *proc, path string) listPage[T] {
	p.t.Helper()
	var pg listPage[T]
	p.call("GET", path, testAdminKey, "", nil, 200, &pg)
	return pg
}

// get queries an event list route.
func (p *proc) get(path string) page { p.t.Helper(); return getPage[event](p, path) }

// exportAll streams every event of a query as NDJSON.
func (p *proc) exportAll(path string) []event {
	p.t.Helper()
	st, b, h := do(p.t, "GET", p.URL+path, testAdminKey, "", nil, "Accept", "application/x-ndjson")
	if st != 200 {
		p.t.Fatalf("GET %s (ndjson): %d %s", path, st, b)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-ndjson") {
		p.t.Fatalf("content type %q", ct)
	}
	var out []event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		mustJSON(p.t, sc.Bytes(), &e)
		out = append(out, e)
	}
	return out
}
