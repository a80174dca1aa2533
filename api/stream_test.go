package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/index"
)

// Keys the stream and status tests present.
const (
	readSecret   = "eye_read_secret"
	ingestSecret = "eye_ingest_secret"
)

// streamNode knows a read key and an ingest key of app "shop".
type streamNode struct{ Node }

func (n *streamNode) ID() string     { return "n1" }
func (n *streamNode) IsLeader() bool { return true }
func (n *streamNode) LookupKey(hash string) (theeye.Key, bool) {
	switch hash {
	case theeye.HashSecret(readSecret):
		return theeye.Key{ID: "key_read", Scopes: []theeye.Scope{theeye.ScopeRead}, Hash: hash}, true
	case theeye.HashSecret(ingestSecret):
		return theeye.Key{ID: "key_ingest", App: "shop", Scopes: []theeye.Scope{theeye.ScopeIngest}, Hash: hash}, true
	}
	return theeye.Key{}, false
}

// streamIndex is an in-memory index: bodies by seq (nil: not a valid
// event), and the indexed seq with its notification.
type streamIndex struct {
	Index
	mu      sync.Mutex
	bodies  [][]byte // seq i+1
	indexed uint64
	notify  chan struct{}
	closed  bool
}

func newStreamIndex() *streamIndex { return &streamIndex{notify: make(chan struct{})} }

// add appends events (nil: an invalid one) and marks them indexed.
func (x *streamIndex) add(bodies ...[]byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.bodies = append(x.bodies, bodies...)
	x.indexed = uint64(len(x.bodies))
	close(x.notify)
	x.notify = make(chan struct{})
}

func (x *streamIndex) IndexedSeq() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.indexed
}

func (x *streamIndex) WaitIndexed(ctx context.Context, seq uint64) error {
	for {
		x.mu.Lock()
		ch, indexed, closed := x.notify, x.indexed, x.closed
		x.mu.Unlock()
		if closed {
			return index.ErrClosed
		}
		if indexed >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (x *streamIndex) ReadStream(ctx context.Context, q index.StreamQuery, from uint64, maxEvents, maxBytes int, fn func(uint64, []byte) error) (uint64, error) {
	x.mu.Lock()
	bodies, indexed := x.bodies, x.indexed
	x.mu.Unlock()
	from = max(from, 1)
	sent := 0
	for n := 0; from <= indexed && n < maxEvents; n++ {
		seq := from
		from++
		b := bodies[seq-1]
		if b == nil || q.Category != "" && !strings.Contains(string(b), `"category":"`+q.Category+`"`) {
			continue
		}
		if err := fn(seq, b); err != nil {
			return from, err
		}
		if sent += len(b); maxBytes > 0 && sent >= maxBytes {
			break
		}
	}
	return from, ctx.Err()
}

// streamServer serves a Server on loopback, with cfg's stream settings and
// the given read timeout.
func streamServer(t *testing.T, ix *streamIndex, cfg Config, readTimeout time.Duration) (*Server, *httptest.Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Node, cfg.Index, cfg.Registerer = &streamNode{}, ix, reg
	s := New(cfg)
	ts := httptest.NewUnstartedServer(s)
	ts.Config.ReadTimeout = readTimeout
	ts.Config.RegisterOnShutdown(s.streams.shutdown)
	ts.Start()
	t.Cleanup(ts.Close)
	return s, ts, reg
}

func body(seq int, category string) []byte {
	return fmt.Appendf(nil, `{"seq":%d,"category":%q,"data":{"pad":"x"}}`, seq, category)
}

// sseEvent is one event of a stream as a client parses it.
type sseEvent struct{ id, typ, data string }

// sseReader reads events (comments counted apart) from a stream.
type sseReader struct {
	r        *bufio.Reader
	comments []string
}

func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.typ != "" || ev.data != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
			s.comments = append(s.comments, line)
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

// openStream starts a stream request and checks its headers.
func openStream(t *testing.T, ctx context.Context, url string, hdr ...string) (*sseReader, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+readSecret)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	return &sseReader{r: bufio.NewReader(resp.Body)}, resp
}

func (s *sseReader) expect(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		ev, err := s.next()
		if err != nil {
			t.Fatalf("waiting for event %s: %v", id, err)
		}
		if ev.typ != "event" || ev.id != id || !strings.Contains(ev.data, `"seq":`+id+",") {
			t.Fatalf("got %+v, want event %s", ev, id)
		}
	}
}

// TestStream_FromSeqLiveAndKeepAlive: from_seq replays what follows it,
// invalid events are skipped, new events come as they are indexed, a
// filter holds, the read timeout of the server does not end the stream,
// and keep-alive comments come while nothing happens.
func TestStream_FromSeqLiveAndKeepAlive(t *testing.T) {
	ix := newStreamIndex()
	ix.add(body(1, "a"), body(2, "b"), nil, body(4, "a"))
	_, ts, _ := streamServer(t, ix, Config{StreamKeepAlive: 100 * time.Millisecond}, 300*time.Millisecond)
	ctx := t.Context()

	all, _ := openStream(t, ctx, ts.URL+"/v1/stream?from_seq=1")
	all.expect(t, "2", "4")
	onlyA, _ := openStream(t, ctx, ts.URL+"/v1/stream?from_seq=0&category=a")
	onlyA.expect(t, "1", "4")
	live, resp := openStream(t, ctx, ts.URL+"/v1/stream")
	if resp.Header.Get("X-Eye-Indexed-Seq") != "4" {
		t.Fatalf("X-Eye-Indexed-Seq %q", resp.Header.Get("X-Eye-Indexed-Seq"))
	}
	// Past the server's read timeout, the streams still deliver.
	waitKeepAlives(t, live, 4)
	ix.add(body(5, "b"), nil, body(7, "a"))
	all.expect(t, "5", "7")
	onlyA.expect(t, "7")
	live.expect(t, "5", "7")
	if !strings.HasPrefix(live.comments[0], ": stream of node n1, after seq 4") {
		t.Fatalf("first comment %q", live.comments[0])
	}
}

// waitKeepAlives reads until n keep-alive comments came, with no event.
func waitKeepAlives(t *testing.T, s *sseReader, n int) {
	t.Helper()
	count := func() int { return strings.Count(strings.Join(s.comments, "\n"), "keep-alive") }
	for count() < n {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d keep-alives: %v", count(), err)
		}
		if strings.HasPrefix(line, ":") {
			s.comments = append(s.comments, line)
		} else if line != "\n" && !strings.HasPrefix(line, "retry: ") {
			t.Fatalf("unexpected line %q", line)
		}
	}
}

// TestStream_LastEventIDWins: a reconnecting EventSource sends the URL
// it first used and the last id it got; the stream resumes after the id.
func TestStream_LastEventIDWins(t *testing.T) {
	ix := newStreamIndex()
	for i := 1; i <= 6; i++ {
		ix.add(body(i, "a"))
	}
	_, ts, _ := streamServer(t, ix, Config{}, 0)
	s, _ := openStream(t, t.Context(), ts.URL+"/v1/stream?from_seq=0", "Last-Event-ID", "4")
	s.expect(t, "5", "6")
}

// TestStream_SlowReaderDropped: a client that stops reading is dropped
// once a write to it has waited StreamWriteTimeout, the reason counted and
// logged; what it had received ends on whole events, and the stream slot
// is free again.
func TestStream_SlowReaderDropped(t *testing.T) {
	ix := newStreamIndex()
	pad := strings.Repeat("x", 16<<10)
	for i := 1; i <= 2000; i++ { // 32 MiB: more than the socket buffers hold
		ix.add(fmt.Appendf(nil, `{"seq":%d,"category":"a","data":{"pad":%q}}`, i, pad))
	}
	s, ts, reg := streamServer(t, ix, Config{StreamWriteTimeout: 300 * time.Millisecond, MaxStreams: 1}, 0)
	if v := gather(t, reg, "theeye_streams_open", ""); v != 0 {
		t.Fatalf("theeye_streams_open %v before any stream", v)
	}
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.DialContext(t.Context(), "tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/stream?from_seq=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", readSecret)
	// Read nothing: the server fills the socket, then its write waits.
	deadline := time.Now().Add(20 * time.Second)
	for gather(t, reg, "theeye_stream_ends_total", endSlowReader) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slow reader was not dropped")
		}
		tick(t)
	}
	if got := s.streams.open.Load(); got != 0 {
		t.Fatalf("%v streams open after the drop", got)
	}
	// The client, reading at last, gets whole events and then the end.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &sseReader{r: bufio.NewReader(resp.Body)}
	n := 0
	for {
		ev, err := r.next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			t.Fatalf("after %d events: %v", n, err)
		}
		if ev.id != fmt.Sprint(n+1) || !strings.HasSuffix(ev.data, `"}}`) {
			t.Fatalf("event %d: id %q, data of %d bytes", n+1, ev.id, len(ev.data))
		}
		n++
	}
	t.Logf("the dropped reader got %d events before the end", n)
	if n == 0 || n >= 2000 {
		t.Fatalf("the dropped reader got %d events", n)
	}
	// The slot is free: another stream opens.
	st, _ := openStream(t, t.Context(), ts.URL+"/v1/stream?from_seq=1999")
	st.expect(t, "2000")
	if v := gather(t, reg, "theeye_stream_ends_total", "slow_reader"); v != 1 {
		t.Fatalf("theeye_stream_ends_total{reason=slow_reader} %v", v)
	}
}

// tick waits a little, for polling loops.
func tick(t *testing.T) {
	t.Helper()
	tm := time.NewTimer(10 * time.Millisecond)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}
}

func gather(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason == "" {
				return m.GetGauge().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// TestStream_LimitAndShutdown: past MaxStreams a stream is 503 with
// Retry-After; at shutdown each open stream ends with an error event that
// says to reconnect.
func TestStream_LimitAndShutdown(t *testing.T) {
	ix := newStreamIndex()
	ix.add(body(1, "a"))
	_, ts, _ := streamServer(t, ix, Config{MaxStreams: 1}, 0)
	s, _ := openStream(t, t.Context(), ts.URL+"/v1/stream?from_seq=0")
	s.expect(t, "1")
	req, _ := http.NewRequest("GET", ts.URL+"/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+readSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "--max-streams") {
		t.Fatalf("second stream: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}

	done := make(chan error, 1)
	go func() { done <- ts.Config.Shutdown(context.Background()) }()
	ev, err := s.next()
	if err != nil || ev.typ != "error" || !strings.Contains(ev.data, `"code":"unavailable"`) || !strings.Contains(ev.data, "Last-Event-ID") {
		t.Fatalf("at shutdown: %+v, %v", ev, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestStream_BadRequests: the parameters are checked before anything is
// streamed, and a key without the read scope is refused.
func TestStream_BadRequests(t *testing.T) {
	_, ts, _ := streamServer(t, newStreamIndex(), Config{MaxEvent: 100}, 0)
	for _, tc := range []struct {
		query, lastID, key string
		status             int
	}{
		{"from_seq=-1", "", readSecret, 400},
		{"from_seq=ten", "", readSecret, 400},
		{"from_seq=18446744073709551616", "", readSecret, 400},
		{"from_seq=1&from_seq=2", "", readSecret, 400},
		{"from_seq=18446744073709551615", "", readSecret, 400},
		{"", "18446744073709551615", readSecret, 400},
		{"", "x", readSecret, 400},
		{"name=pageview", "", readSecret, 400},
		{"category=" + strings.Repeat("c", 101), "", readSecret, 400},
		{"app=a&app=b", "", readSecret, 400},
		{"", "", ingestSecret, 403},
		{"", "", "nope", 401},
	} {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/stream?"+tc.query, nil)
		req.Header.Set("Authorization", "Bearer "+tc.key)
		if tc.lastID != "" {
			req.Header.Set("Last-Event-ID", tc.lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%q / Last-Event-ID %q: %d %s, want %d", tc.query, tc.lastID, resp.StatusCode, b, tc.status)
		}
	}
}

// FuzzParseStreamParams: whatever the query and header, the parser does
// not panic, and what it accepts is what it was given.
func FuzzParseStreamParams(f *testing.F) {
	f.Add("from_seq=12&category=page+interaction&name=pageview", "")
	f.Add("app=shop&session_id=s1", "42")
	f.Add("from_seq=-1", " 7 ")
	f.Add("name=x", "18446744073709551615")
	f.Fuzz(func(t *testing.T, rawQuery, lastID string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		p, err := parseStreamParams(q, []string{lastID}, 1<<10)
		if err != nil {
			if theeye.ErrorCode(err) != theeye.EInvalidParam {
				t.Fatalf("error %v is not invalid_parameter", err)
			}
			return
		}
		if p.query.Name != "" && p.query.Category == "" {
			t.Fatal("name without category accepted")
		}
		if v := strings.TrimSpace(lastID); v != "" {
			if n, err := strconv.ParseUint(v, 10, 64); err != nil || n != p.after || !p.resume || n == math.MaxUint64 {
				t.Fatalf("Last-Event-ID %q read as %d", lastID, p.after)
			}
		}
		if len(p.query.Category) > 1<<10 || len(p.query.Session) > 1<<10 {
			t.Fatal("an over-long filter accepted")
		}
	})
}
