package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// hostileCase is one kind of bad request and what it must get.
type hostileCase struct {
	group, name string
	send        func(h *hostile) (status int, code string)
	status      int    // 0: the server closes the connection without an answer
	code        string // the error code of the body ("" for answers net/http writes itself)
}

// hostile is the node the hostile-input test attacks and the keys it uses.
type hostile struct {
	t                 *testing.T
	p                 *proc
	ingest, read, adm string
	addr              string // host:port
}

// request sends one request and returns its status and error code.
func (h *hostile) request(method, path, key string, body []byte, hdr ...string) (int, string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+h.addr+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	return resp.StatusCode, errorCode(resp.Body)
}

func errorCode(r io.Reader) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
	json.Unmarshal(b, &e)
	return e.Error.Code
}

// raw writes bytes on a fresh connection, then reads the answer (or the
// close) with a deadline, and returns the status (0 when the server closed
// the connection without one) and the error code.
func (h *hostile) raw(parts ...[]byte) (int, string) {
	h.t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	for _, p := range parts {
		if _, err := c.Write(p); err != nil {
			return 0, ""
		}
	}
	// The server's own timeouts end the exchange; this deadline only keeps
	// a broken server from hanging the test.
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	return resp.StatusCode, errorCode(resp.Body)
}

func (h *hostile) post(body []byte, hdr ...string) (int, string) {
	return h.request("POST", "/v1/events", h.ingest, body, append([]string{"Content-Type", "application/json"}, hdr...)...)
}

func (h *hostile) ndjson(body string) (int, string) {
	return h.request("POST", "/v1/events", h.ingest, []byte(body), "Content-Type", "application/x-ndjson")
}

func (h *hostile) query(path string) (int, string) { return h.request("GET", path, h.read, nil) }

func (h *hostile) admin(method, path, body string) (int, string) {
	return h.request(method, path, h.adm, []byte(body), "Content-Type", "application/json")
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// Limits of the attacked node (small, so that going over them is cheap).
const (
	hostileMaxBody   = 256 << 10
	hostileMaxEvent  = 4 << 10
	hostileMaxEvents = 100
)

// hostileCases are the bad requests TestHostileInput sends, in the order
// of the README's table.
func hostileCases() []hostileCase {
	return slices.Concat(bodyCases(), sizeCases(), ndjsonCases(), encodingCases(), credentialCases(),
		headerCases(), methodCases(), parameterCases(), streamStatusCases(), adminCases(), slowCases())
}

// bigEvent is one event over hostileMaxEvent.
func bigEvent() string {
	return `{"session_id":"s","category":"c","name":"n","timestamp":"2021-01-01T00:00:00Z","data":{"pad":"` + strings.Repeat("x", hostileMaxEvent) + `"}}`
}

// hugeBatch is a JSON array of events over hostileMaxBody.
func hugeBatch() string {
	return "[" + strings.TrimSuffix(strings.Repeat(exPageview+",", hostileMaxBody/len(exPageview)+10), ",") + "]"
}

// rawPost is the bytes of a POST /v1/events with the ingest key, more
// headers and body, for raw.
func (h *hostile) rawPost(headers, body string) []byte {
	return []byte("POST /v1/events HTTP/1.1\r\nHost: " + h.addr + "\r\nAuthorization: Bearer " + h.ingest +
		"\r\nContent-Type: application/json\r\n" + headers + "\r\n" + body)
}

// bodyCases are badly formed bodies.
func bodyCases() []hostileCase {
	ev := exPageview
	return []hostileCase{
		{"body", "empty body", func(h *hostile) (int, string) { return h.post(nil) }, 400, "empty_batch"},
		{"body", "only whitespace", func(h *hostile) (int, string) { return h.post([]byte(" \n\t ")) }, 400, "empty_batch"},
		{"body", "an empty array", func(h *hostile) (int, string) { return h.post([]byte("[]")) }, 400, "empty_batch"},
		{"body", "not JSON", func(h *hostile) (int, string) { return h.post([]byte("{oops")) }, 400, "invalid_json"},
		{"body", "an array cut short", func(h *hostile) (int, string) { return h.post([]byte("[" + ev + ",")) }, 400, "invalid_json"},
		{"body", "data after the object", func(h *hostile) (int, string) { return h.post([]byte(ev + " x")) }, 400, "invalid_json"},
		{"body", "a JSON string", func(h *hostile) (int, string) { return h.post([]byte(`"pageview"`)) }, 400, "not_an_object"},
		{"body", "a JSON number", func(h *hostile) (int, string) { return h.post([]byte("42")) }, 400, "not_an_object"},
		{"body", "null", func(h *hostile) (int, string) { return h.post([]byte("null")) }, 400, "not_an_object"},
		{"body", "an array with one element not an object", func(h *hostile) (int, string) { return h.post([]byte("[" + ev + ",3]")) }, 400, "not_an_object"},
		{"body", "invalid UTF-8 in a string", func(h *hostile) (int, string) {
			return h.post([]byte(strings.Replace(ev, "pageview", "page\xffview", 1)))
		}, 400, "invalid_json"},
		{"body", "arrays nested 20,000 deep", func(h *hostile) (int, string) {
			return h.post([]byte(strings.Repeat("[", 20000) + strings.Repeat("]", 20000)))
		}, 400, "invalid_json"},
	}
}

// sizeCases are bodies, events and batches over the limits.
func sizeCases() []hostileCase {
	ev := exPageview
	big := bigEvent()
	huge := hugeBatch()
	many := "[" + strings.TrimSuffix(strings.Repeat(ev+",", hostileMaxEvents+1), ",") + "]"
	return []hostileCase{
		{"size", "an event over --max-event", func(h *hostile) (int, string) { return h.post([]byte(big)) }, 413, "event_too_large"},
		{"size", "more events than --max-batch-events", func(h *hostile) (int, string) { return h.post([]byte(many)) }, 413, "too_many_events"},
		{"size", "a body over --max-body", func(h *hostile) (int, string) { return h.post([]byte(huge)) }, 413, "body_too_large"},
		{"size", "a Content-Length over --max-body", func(h *hostile) (int, string) {
			return h.raw(h.rawPost(fmt.Sprintf("Content-Length: %d\r\n", hostileMaxBody+1), ev))
		}, 413, "body_too_large"},
		{"size", "a chunked body over --max-body", func(h *hostile) (int, string) {
			chunk := fmt.Sprintf("%x\r\n%s\r\n", len(huge), huge)
			return h.raw(h.rawPost("Transfer-Encoding: chunked\r\n", chunk+"0\r\n\r\n"))
		}, 413, "body_too_large"},
	}
}

// ndjsonCases are bad NDJSON.
func ndjsonCases() []hostileCase {
	ev := exPageview
	big := bigEvent()
	return []hostileCase{
		{"ndjson", "NDJSON with a line that is not JSON", func(h *hostile) (int, string) { return h.ndjson(ev + "\n{oops\n") }, 400, "invalid_json"},
		{"ndjson", "NDJSON with a line that is an array", func(h *hostile) (int, string) { return h.ndjson(ev + "\n[1]\n") }, 400, "not_an_object"},
		{"ndjson", "NDJSON of blank lines", func(h *hostile) (int, string) { return h.ndjson("\n\n  \n") }, 400, "empty_batch"},
		{"ndjson", "NDJSON with invalid UTF-8", func(h *hostile) (int, string) { return h.ndjson(ev + "\n{\"a\":\"\xc3\x28\"}\n") }, 400, "invalid_json"},
		{"ndjson", "NDJSON with an event over --max-event", func(h *hostile) (int, string) { return h.ndjson(ev + "\n" + big + "\n") }, 413, "event_too_large"},
	}
}

// encodingCases are bad encodings and media types.
func encodingCases() []hostileCase {
	ev := exPageview
	return []hostileCase{
		{"encoding", "gzip announced, plain body", func(h *hostile) (int, string) {
			return h.post([]byte(ev), "Content-Encoding", "gzip")
		}, 400, "invalid_request"},
		{"encoding", "a gzip stream cut short", func(h *hostile) (int, string) {
			z := gz([]byte(ev))
			return h.post(z[:len(z)/2], "Content-Encoding", "gzip")
		}, 400, "invalid_request"},
		{"encoding", "a gzip bomb (32 MiB of zeros in 32 KiB)", func(h *hostile) (int, string) {
			return h.post(gz(make([]byte, 32<<20)), "Content-Encoding", "gzip")
		}, 413, "body_too_large"},
		{"encoding", "gzip of invalid JSON", func(h *hostile) (int, string) {
			return h.post(gz([]byte("{oops")), "Content-Encoding", "gzip")
		}, 400, "invalid_json"},
		{"encoding", "Content-Encoding br", func(h *hostile) (int, string) { return h.post([]byte(ev), "Content-Encoding", "br") }, 415, "unsupported_media_type"},
		{"encoding", "Content-Type text/plain", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/events", h.ingest, []byte(ev), "Content-Type", "text/plain")
		}, 415, "unsupported_media_type"},
		{"encoding", "a malformed Content-Type", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/events", h.ingest, []byte(ev), "Content-Type", ";;;")
		}, 415, "unsupported_media_type"},
	}
}

// credentialCases are missing, wrong and misused credentials.
func credentialCases() []hostileCase {
	ev := exPageview
	return []hostileCase{
		{"credentials", "no Authorization header", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/events", "", []byte(ev), "Content-Type", "application/json")
		}, 401, "unauthorized"},
		{"credentials", "Basic instead of Bearer", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/events", "", []byte(ev), "Authorization", "Basic YWRtaW46YWRtaW4=")
		}, 401, "unauthorized"},
		{"credentials", "Bearer with no key", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/events", "", []byte(ev), "Authorization", "Bearer ")
		}, 401, "unauthorized"},
		{"credentials", "an 8 KiB key", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/events", strings.Repeat("k", 8<<10), []byte(ev))
		}, 401, "unauthorized"},
		{"credentials", "two Authorization headers", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/events", "", []byte(ev), "Authorization", "Bearer "+h.ingest, "Authorization", "Bearer "+h.adm)
		}, 401, "unauthorized"},
		{"credentials", "the v1 X-Eye-Cluster-Key header", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/events", h.ingest, []byte(ev), "X-Eye-Cluster-Key", testClusterKey)
		}, 401, "unauthorized"},
		{"credentials", "a forged X-Eye-Forwarded proof", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/events", h.ingest, []byte(ev), "X-Eye-Forwarded", forgedProof("n2"))
		}, 401, "unauthorized"},
		{"credentials", "a malformed X-Eye-Node-Auth", func(h *hostile) (int, string) {
			return h.request("GET", "/v1/cluster/self", "", nil, "X-Eye-Node-Auth", "v1 node=n2 ts=now")
		}, 401, "unauthorized"},
		{"credentials", "a read key posting events", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/events", h.read, []byte(ev), "Content-Type", "application/json")
		}, 403, "forbidden"},
		{"credentials", "an ingest key creating an app", func(h *hostile) (int, string) {
			return h.request("POST", "/v1/apps", h.ingest, []byte(`{"name":"x"}`), "Content-Type", "application/json")
		}, 403, "forbidden"},
	}
}

// headerCases are headers over the limit.
func headerCases() []hostileCase {
	return []hostileCase{
		{"headers", "headers over 64 KiB", func(h *hostile) (int, string) {
			return h.raw(h.rawPost("X-Padding: "+strings.Repeat("p", 70<<10)+"\r\nContent-Length: 2\r\n", "{}"))
		}, 431, ""},
	}
}

// methodCases are methods and paths no route serves.
func methodCases() []hostileCase {
	ev := exPageview
	return []hostileCase{
		{"method", "PATCH /v1/events", func(h *hostile) (int, string) { return h.request("PATCH", "/v1/events", h.ingest, []byte(ev)) }, 405, "method_not_allowed"},
		{"method", "a made-up method (BREW /v1/events)", func(h *hostile) (int, string) { return h.request("BREW", "/v1/events", h.ingest, nil) }, 405, "method_not_allowed"},
		{"method", "TRACE /", func(h *hostile) (int, string) { return h.request("TRACE", "/", "", nil) }, 405, "method_not_allowed"},
		{"method", "a path no route serves", func(h *hostile) (int, string) { return h.query("/v1/../etc/passwd") }, 404, "not_found"},
	}
}

// parameterCases are bad query parameters.
func parameterCases() []hostileCase {
	return []hostileCase{
		{"parameter", "limit=0", func(h *hostile) (int, string) { return h.query("/v1/events?limit=0") }, 400, "invalid_parameter"},
		{"parameter", "limit over 10,000", func(h *hostile) (int, string) { return h.query("/v1/events?limit=10001") }, 400, "invalid_parameter"},
		{"parameter", "limit=ten", func(h *hostile) (int, string) { return h.query("/v1/events?limit=ten") }, 400, "invalid_parameter"},
		{"parameter", "from=yesterday", func(h *hostile) (int, string) { return h.query("/v1/events?from=yesterday") }, 400, "invalid_parameter"},
		{"parameter", "to before from", func(h *hostile) (int, string) {
			return h.query("/v1/events?from=2021-01-02T00:00:00Z&to=2021-01-01T00:00:00Z")
		}, 400, "invalid_parameter"},
		{"parameter", "order=sideways", func(h *hostile) (int, string) { return h.query("/v1/events?order=sideways") }, 400, "invalid_parameter"},
		{"parameter", "a cursor that is not base64url", func(h *hostile) (int, string) { return h.query("/v1/events?cursor=%21%21%21") }, 400, "invalid_parameter"},
		{"parameter", "a cursor of another query", func(h *hostile) (int, string) {
			return h.query("/v1/events?category=page+interaction&cursor=" + h.cursorOf("/v1/sessions/"+exSession+"/events?limit=1"))
		}, 400, "invalid_parameter"},
		{"parameter", "min_seq=-1", func(h *hostile) (int, string) { return h.query("/v1/events?min_seq=-1") }, 400, "invalid_parameter"},
		{"parameter", "wait=1h", func(h *hostile) (int, string) { return h.query("/v1/events?min_seq=1&wait=1h") }, 400, "invalid_parameter"},
		{"parameter", "name without category", func(h *hostile) (int, string) { return h.query("/v1/events?name=pageview") }, 400, "invalid_parameter"},
		{"parameter", "an unknown reason on errors", func(h *hostile) (int, string) { return h.query("/v1/errors?reason=bogus") }, 400, "invalid_parameter"},
		{"parameter", "stats interval=1w", func(h *hostile) (int, string) { return h.query("/v1/stats?interval=1w") }, 400, "invalid_parameter"},
		{"parameter", "stats to before from", func(h *hostile) (int, string) {
			return h.query("/v1/stats?from=2021-01-02T00:00:00Z&to=2021-01-01T00:00:00Z")
		}, 400, "invalid_parameter"},
		{"parameter", "stats over 10,000 buckets (30 days by minute)", func(h *hostile) (int, string) {
			return h.query("/v1/stats?interval=1m&from=2021-01-01T00:00:00Z&to=2021-01-31T00:00:00Z")
		}, 400, "invalid_parameter"},
		{"parameter", "stats from the year 1000", func(h *hostile) (int, string) { return h.query("/v1/stats?interval=1d&from=1000-01-01T00:00:00Z") }, 400, "invalid_parameter"},
	}
}

// adminCases are bad admin bodies.
func adminCases() []hostileCase {
	return []hostileCase{
		{"admin", "an app body with an unknown field", func(h *hostile) (int, string) { return h.admin("POST", "/v1/apps", `{"name":"a","owner":"me"}`) }, 400, "invalid_request"},
		{"admin", "an app name with a path in it", func(h *hostile) (int, string) { return h.admin("POST", "/v1/apps", `{"name":"../etc"}`) }, 400, "invalid_request"},
		{"admin", "an app body that is not JSON", func(h *hostile) (int, string) { return h.admin("POST", "/v1/apps", `name=a`) }, 400, "invalid_request"},
		{"admin", "a key with a made-up scope", func(h *hostile) (int, string) { return h.admin("POST", "/v1/keys", `{"name":"k","scopes":["root"]}`) }, 400, "invalid_request"},
		{"admin", "a key for an app that does not exist", func(h *hostile) (int, string) {
			return h.admin("POST", "/v1/keys", `{"name":"k","scopes":["ingest"],"app":"ghost"}`)
		}, 404, "not_found"},
		{"admin", "a schema that does not compile", func(h *hostile) (int, string) {
			return h.admin("POST", "/v1/schemas", `{"category":"c","name":"n","schema":{"type":12}}`)
		}, 400, "invalid_request"},
		{"admin", "a schema that $refs a URL", func(h *hostile) (int, string) {
			return h.admin("POST", "/v1/schemas", `{"category":"c","name":"n","schema":{"$ref":"http://169.254.169.254/latest"}}`)
		}, 400, "invalid_request"},
		{"admin", "a config value that does not parse", func(h *hostile) (int, string) { return h.admin("PUT", "/v1/config", `{"max_clock_skew":"soon"}`) }, 400, "invalid_request"},
		{"admin", "revoking a key that does not exist", func(h *hostile) (int, string) { return h.admin("DELETE", "/v1/keys/key_nope", "") }, 404, "not_found"},
		{"admin", "an app name that is taken", func(h *hostile) (int, string) { return h.admin("POST", "/v1/apps", `{"name":"shop"}`) }, 409, "conflict"},
	}
}

// slowCases are clients slower than the timeouts.
func slowCases() []hostileCase {
	ev := exPageview
	return []hostileCase{
		{"slow", "headers slower than the header timeout", func(h *hostile) (int, string) {
			return h.raw([]byte("POST /v1/events HTTP/1.1\r\nHost: x\r\n"))
		}, 0, ""},
		{"slow", "a body slower than the read timeout", func(h *hostile) (int, string) {
			return h.raw(h.rawPost("Content-Length: 1000\r\n", ev[:20]))
		}, 400, "invalid_request"},
	}
}

// cursorOf returns the next_cursor of a page.
func (h *hostile) cursorOf(path string) string {
	var pg page
	h.p.call("GET", path, h.read, "", nil, 200, &pg)
	if pg.NextCursor == nil {
		h.t.Fatalf("%s: no next_cursor", path)
	}
	return *pg.NextCursor
}

// TestHostileInput sends every kind of bad request of hostileCases to a
// real node and checks the status and error code each gets, that nothing
// of any was stored, and that the node serves on. The table goes into the
// README's security section (THEEYE_UPDATE_README=1 rewrites it there;
// otherwise the test fails when the two differ).
func TestHostileInput(t *testing.T) {
	p := startNode(t, t.TempDir(), "--cluster-key", testClusterKey,
		"--max-body", fmt.Sprint(hostileMaxBody), "--max-event", fmt.Sprint(hostileMaxEvent), "--max-batch-events", fmt.Sprint(hostileMaxEvents),
		"--http-read-header-timeout", "1s", "--http-read-timeout", "2s")
	h := &hostile{t: t, p: p, ingest: p.createApp("shop"), adm: testAdminKey, addr: strings.TrimPrefix(p.URL, "http://")}
	var rk struct {
		Secret string `json:"secret"`
	}
	p.call("POST", "/v1/keys", testAdminKey, "application/json", []byte(`{"name":"analysts","scopes":["read"]}`), 201, &rk)
	h.read = rk.Secret
	first := p.post(h.ingest, "application/json", []byte("["+exPageview+","+exCTA+"]"))
	before := readState(t, []*proc{p}, testAdminKey)

	cases := hostileCases()
	if len(cases) < 40 {
		t.Fatalf("%d kinds of bad request, want at least 40", len(cases))
	}
	for _, c := range cases {
		status, code := c.send(h)
		if status != c.status || code != c.code {
			t.Errorf("%s: %d %q, want %d %q", c.name, status, code, c.status, c.code)
		}
	}

	// Made-up methods do not become metrics labels.
	for i := range 40 {
		h.request(fmt.Sprintf("JUNK%d", i), "/v1/events", "", nil)
	}
	st, b, _ := do(t, "GET", p.URL+"/metrics", "", "", nil)
	if st != 200 {
		t.Fatalf("metrics: %d", st)
	}
	methods := map[string]bool{}
	for _, m := range regexp.MustCompile(`theeye_http_requests_total\{[^}]*method="([^"]*)"`).FindAllSubmatch(b, -1) {
		methods[string(m[1])] = true
	}
	if len(methods) > 8 || methods["JUNK1"] {
		t.Errorf("method labels %v: made-up methods became series", slices.Sorted(func(yield func(string) bool) {
			for m := range methods {
				if !yield(m) {
					return
				}
			}
		}))
	}

	// Nothing was stored: the state is as it was, and the next event takes
	// the very next seq.
	if after := readState(t, []*proc{p}, testAdminKey); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("bad requests changed the state:\nbefore %+v\nafter  %+v", before, after)
	}
	if a := p.post(h.ingest, "application/json", []byte(exSubmit)); a.Seq != first.Seq+1 {
		t.Fatalf("the next event got seq %d after %d: something in between was stored", a.Seq, first.Seq)
	}
	if st, b, _ := do(t, "GET", p.URL+"/readyz", "", "", nil); st != 200 {
		t.Fatalf("readyz after the attack: %d %s", st, b)
	}
	checkHostileTable(t, cases)
}

// checkHostileTable holds the README's table of bad requests to the cases.
func checkHostileTable(t *testing.T, cases []hostileCase) {
	const begin, end = "<!-- hostile-input-table: begin (TestHostileInput writes it) -->\n", "<!-- hostile-input-table: end -->"
	var tb strings.Builder
	tb.WriteString("| kind | request | answer |\n|---|---|---|\n")
	for _, c := range cases {
		answer := "connection closed, no answer"
		if c.status != 0 {
			answer = fmt.Sprintf("%d %s", c.status, http.StatusText(c.status))
			if c.code != "" {
				answer = fmt.Sprintf("%d `%s`", c.status, c.code)
			}
		}
		fmt.Fprintf(&tb, "| %s | %s | %s |\n", c.group, c.name, answer)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("README.md has no hostile-input table between %q and %q", begin, end)
	}
	got := string(readme[i+len(begin) : j])
	if got == tb.String() {
		return
	}
	if os.Getenv("THEEYE_UPDATE_README") == "1" {
		out := append(append(append([]byte(nil), readme[:i+len(begin)]...), tb.String()...), readme[j:]...)
		if err := os.WriteFile("../../README.md", out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's hostile-input table is not the test's; rerun with THEEYE_UPDATE_README=1:\n%s", tb.String())
}
