package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sseEv is one event of a stream as the tests read it.
type sseEv struct {
	id, typ, data string
}

// sseConn is a stream read in the background: events and keep-alive
// comments pile up for the test to wait on.
type sseConn struct {
	t      *testing.T
	resp   *http.Response
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	events   []sseEv
	comments int
	err      error // why reading stopped
}

// openSSE opens a stream with key and requires a 200.
func openSSE(t *testing.T, url, key string, hdr ...string) *sseConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	s := &sseConn{t: t, resp: resp, cancel: cancel, done: make(chan struct{})}
	t.Cleanup(s.close)
	go s.read()
	return s
}

func (s *sseConn) read() {
	defer close(s.done)
	r := bufio.NewReaderSize(s.resp.Body, 1<<20)
	var ev sseEv
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		line = strings.TrimSuffix(line, "\n")
		s.mu.Lock()
		switch {
		case line == "":
			if ev.typ != "" {
				s.events = append(s.events, ev)
			}
			ev = sseEv{}
		case strings.HasPrefix(line, ": keep-alive"):
			s.comments++
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
		s.mu.Unlock()
	}
}

func (s *sseConn) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

// snapshot returns the events read so far.
func (s *sseConn) snapshot() []sseEv {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// waitEvents waits until n events have come and returns them all.
func (s *sseConn) waitEvents(n int) []sseEv {
	s.t.Helper()
	waitFor(s.t, 30*time.Second, fmt.Sprintf("%d events on the stream", n), func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.events) < n {
			return fmt.Errorf("%d events, read error %v", len(s.events), s.err)
		}
		return nil
	})
	return s.snapshot()
}

func (s *sseConn) waitKeepAlives(n int) {
	s.t.Helper()
	waitFor(s.t, 30*time.Second, fmt.Sprintf("%d keep-alives", n), func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.comments < n {
			return fmt.Errorf("%d keep-alives, read error %v", s.comments, s.err)
		}
		return nil
	})
}

// seqs returns the ids of events, checking each is a seq equal to the one
// in its data.
func (s *sseConn) seqs(evs []sseEv) []uint64 {
	s.t.Helper()
	out := make([]uint64, len(evs))
	for i, e := range evs {
		n, err := strconv.ParseUint(e.id, 10, 64)
		if err != nil || e.typ != "event" || !strings.HasPrefix(e.data, `{"seq":`+e.id+",") {
			s.t.Fatalf("event %+v: the id is not the seq of its data", e)
		}
		out[i] = n
	}
	return out
}

// exportBySeq reads every valid event as queries return it, by seq.
func exportBySeq(t *testing.T, p *proc, minSeq uint64) map[uint64]string {
	t.Helper()
	st, b, _ := do(t, "GET", p.URL+fmt.Sprintf("/v1/events?min_seq=%d&wait=30s", minSeq), testAdminKey, "", nil, "Accept", "application/x-ndjson")
	if st != 200 {
		t.Fatalf("export: %d %s", st, b)
	}
	out := map[uint64]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e event
		mustJSON(t, []byte(line), &e)
		out[e.Seq] = line
	}
	return out
}

func (p *proc) readKey() string {
	p.t.Helper()
	var rk struct {
		Secret string `json:"secret"`
	}
	p.call("POST", "/v1/keys", testAdminKey, "application/json", []byte(`{"name":"analysts","scopes":["read"]}`), 201, &rk)
	return rk.Secret
}

func streamEvent(id, session, category, name, ts string, i int) string {
	idf := ""
	if id != "" {
		idf = `"id":"` + id + `",`
	}
	return fmt.Sprintf(`{%s"session_id":%q,"category":%q,"name":%q,"data":{"form":{"first_name":"J"},"i":%d},"timestamp":%q}`,
		idf, session, category, name, i, ts)
}

// TestStreamEndToEnd: live streams with filters get each valid matching
// event once, in seq order, with the bytes queries return; invalid
// events, duplicates and id conflicts never appear; keep-alives come and
// the server's read timeout does not end a stream; a reconnect with
// Last-Event-ID resumes with no gap and no duplicate; from_seq replays.
func TestStreamEndToEnd(t *testing.T) {
	n := startNode(t, t.TempDir(), "--http-read-timeout", "1s", "--stream-keepalive", "200ms")
	web, mobile, reader := n.createApp("web"), n.createApp("mobile"), n.readKey()
	n.putSchema("form interaction", "submit", formSchemaV1)
	const ts = "2021-01-01 09:15:27"
	future := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)

	all := openSSE(t, n.URL+"/v1/stream", reader)
	forms := openSSE(t, n.URL+"/v1/stream?category=form+interaction&name=submit", reader)
	mob := openSSE(t, n.URL+"/v1/stream?app=mobile", reader)
	s2 := openSSE(t, n.URL+"/v1/stream?session_id=s2", reader)

	w1 := streamEvent("w1", "s1", "page interaction", "pageview", ts, 1)
	webBatch := strings.Join([]string{
		w1, // 1 valid
		streamEvent("w2", "s2", "form interaction", "submit", ts, 2),                                // 2 valid
		strings.Replace(streamEvent("", "s2", "form interaction", "submit", ts, 3), `"J"`, "12", 1), // 3 schema_violation
		streamEvent("", "s1", "page interaction", "pageview", future, 4),                            // 4 timestamp_in_future
		w1, // 5 duplicate
		streamEvent("w1", "s1", "page interaction", "pageview", ts, 6), // 6 duplicate_id_conflict
	}, "\n")
	n.post(web, "application/x-ndjson", []byte(webBatch))
	a := n.post(mobile, "application/x-ndjson", []byte(strings.Join([]string{
		streamEvent("m1", "s2", "form interaction", "submit", ts, 7),   // 7 valid
		streamEvent("m2", "s1", "page interaction", "pageview", ts, 8), // 8 valid
		w1, // 9 valid: another app's id
	}, "\n")))
	if a.Seq != 9 {
		t.Fatalf("last seq %d, want 9", a.Seq)
	}
	export := exportBySeq(t, n, a.Seq)
	for _, c := range []struct {
		name string
		s    *sseConn
		want []uint64
	}{{"all", all, []uint64{1, 2, 7, 8, 9}}, {"forms", forms, []uint64{2, 7}}, {"mobile", mob, []uint64{7, 8, 9}}, {"session s2", s2, []uint64{2, 7}}} {
		evs := c.s.waitEvents(len(c.want))
		if got := c.s.seqs(evs); !slices.Equal(got, c.want) {
			t.Fatalf("%s: streamed %v, want %v", c.name, got, c.want)
		}
		for _, e := range evs {
			seq, _ := strconv.ParseUint(e.id, 10, 64)
			if e.data != export[seq] {
				t.Fatalf("%s: seq %d streamed as\n%s\nqueries return\n%s", c.name, seq, e.data, export[seq])
			}
		}
	}

	// Keep-alives past the read timeout (1s), and the stream still delivers.
	all.waitKeepAlives(8)
	n.post(web, "application/json", []byte(streamEvent("w3", "s3", "c", "n", ts, 10)))
	if got := all.seqs(all.waitEvents(6)); got[5] != 10 {
		t.Fatalf("after the read timeout: %v", got)
	}

	// A reconnect with Last-Event-ID (and the first URL's from_seq, which
	// it overrides) resumes after the last event received.
	all.close()
	last := all.snapshot()[len(all.snapshot())-1].id
	a = n.post(web, "application/x-ndjson", []byte(strings.Join([]string{
		streamEvent("w4", "s3", "c", "n", ts, 11), streamEvent("", "s3", "c", "n", future, 12), streamEvent("w5", "s3", "c", "n", ts, 13),
	}, "\n")))
	again := openSSE(t, n.URL+"/v1/stream?from_seq=0", reader, "Last-Event-ID", last)
	if got := again.seqs(again.waitEvents(2)); !slices.Equal(got, []uint64{11, 13}) {
		t.Fatalf("resumed after %s: %v, want [11 13]", last, got)
	}

	// from_seq replays the log: every valid event, in seq order, as the
	// export has them.
	export = exportBySeq(t, n, a.Seq)
	replay := openSSE(t, n.URL+"/v1/stream?from_seq=0", reader)
	evs := replay.waitEvents(len(export))
	want := slices.Sorted(func(yield func(uint64) bool) {
		for s := range export {
			if !yield(s) {
				return
			}
		}
	})
	if got := replay.seqs(evs); !slices.Equal(got, want) {
		t.Fatalf("replay: %v, want %v", got, want)
	}
	for _, e := range evs {
		seq, _ := strconv.ParseUint(e.id, 10, 64)
		if e.data != export[seq] {
			t.Fatalf("replay: seq %d differs from the export", seq)
		}
	}
	if st, b, _ := do(t, "GET", n.URL+"/v1/stream", web, "", nil); st != 403 {
		t.Fatalf("an ingest key streaming: %d %s", st, b)
	}
}

// TestStreamSlowReaderDropped: a reader that stops reading is dropped
// once a write to it has waited --stream-write-timeout; the node logs why
// and counts it, and what the reader had received ends on whole events.
func TestStreamSlowReaderDropped(t *testing.T) {
	n := startNode(t, t.TempDir(), "--stream-write-timeout", "1s")
	key, reader := n.createApp("web"), n.readKey()
	pad := strings.Repeat("x", 8<<10)
	for b := range 5 { // 2,500 events of 8 KiB: more than the socket buffers hold
		var sb strings.Builder
		for i := range 500 {
			fmt.Fprintf(&sb, `{"session_id":"s","category":"c","name":"n","data":{"i":%d,"pad":%q},"timestamp":"2021-01-01T00:00:00Z"}`+"\n", b*500+i, pad)
		}
		n.post(key, "application/x-ndjson", []byte(sb.String()))
	}
	exportBySeq(t, n, 2500) // indexed
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.DialContext(t.Context(), "tcp", strings.TrimPrefix(n.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/stream?from_seq=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", reader)
	dropped := regexp.MustCompile(`theeye_stream_ends_total\{reason="slow_reader"\} 1`)
	waitFor(t, 30*time.Second, "the slow reader to be dropped", func() error {
		if _, b, _ := do(t, "GET", n.URL+"/metrics", "", "", nil); !dropped.Match(b) {
			return errors.New("not yet")
		}
		return nil
	})
	if !strings.Contains(n.Out.String(), "stream reader dropped") {
		t.Fatalf("the node did not log the drop:\n%s", n.Out.String())
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The connection was closed inside the chunked body: the read ends
	// with an error, after what the socket held.
	body, _ := io.ReadAll(resp.Body)
	events := bytes.Split(body, []byte("\n\n"))
	whole := 0
	for i, e := range events {
		if bytes.HasPrefix(e, []byte("id: ")) && bytes.HasSuffix(e, []byte(`"}`)) {
			whole++
			if !bytes.HasPrefix(e, fmt.Appendf(nil, "id: %d\n", whole)) {
				t.Fatalf("event %d of what was received: %.60q", i, e)
			}
		}
	}
	if whole == 0 || whole >= 2500 {
		t.Fatalf("the dropped reader got %d whole events", whole)
	}
	t.Logf("the dropped reader had %d whole events (%d KiB) in its socket", whole, len(body)>>10)
}

// TestStreamEndsAtShutdown: SIGTERM ends open streams with an error event
// that says to reconnect, and the node still stops at once.
func TestStreamEndsAtShutdown(t *testing.T) {
	n := startNode(t, t.TempDir())
	s := openSSE(t, n.URL+"/v1/stream", testAdminKey)
	start := time.Now()
	n.stop()
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("shutdown took %s with a stream open", d)
	}
	evs := s.waitEvents(1)
	if evs[0].typ != "error" || !strings.Contains(evs[0].data, `"code":"unavailable"`) || !strings.Contains(evs[0].data, "Last-Event-ID") {
		t.Fatalf("last event %+v", evs[0])
	}
}

// TestStreamResumesOnAnotherNode: a stream read from a follower that is
// killed resumes on another node with Last-Event-ID, with no gap and no
// duplicate, events sent meanwhile included.
func TestStreamResumesOnAnotherNode(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false)
	l := c.leader()
	var follower, other *proc
	for _, p := range c.nodes {
		if p != l {
			if follower == nil {
				follower = p
			} else {
				other = p
			}
		}
	}
	key := l.createApp("web")
	send := func(from, to int) {
		var sb strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintln(&sb, streamEvent(fmt.Sprintf("e%d", i), "s", "c", "n", "2021-01-01 00:00:00", i))
		}
		l.post(key, "application/x-ndjson", []byte(sb.String()))
	}
	send(0, 50)
	s := openSSE(t, follower.URL+"/v1/stream?from_seq=0", testAdminKey)
	got := s.seqs(s.waitEvents(50))
	follower.kill9()
	send(50, 100)
	s2 := openSSE(t, other.URL+"/v1/stream", testAdminKey, "Last-Event-ID", fmt.Sprint(got[len(got)-1]))
	got = append(got, s2.seqs(s2.waitEvents(50))...)
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("seqs %v: a gap or a duplicate at %d", got, i)
		}
	}
}
