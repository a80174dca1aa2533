package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSSEParser: fields, multi-line data, comments, CRLF, a message cut
// short at the end, and the line limit.
func TestSSEParser(t *testing.T) {
	in := "retry: 1000\n: hello\n\n" +
		"id: 1\nevent: event\ndata: {\"seq\":1}\n\n" +
		"id: 2\r\nevent: event\r\ndata:{\"seq\":2}\r\n\r\n" +
		": keep-alive\n\n" +
		"data: a\ndata: b\n\n" +
		"event: error\ndata: {\"error\":{}}\n\n" +
		"id: 3\nevent: event\ndata: {\"se"
	p := newSSEParser(strings.NewReader(in), 1<<10)
	var got []string
	for {
		m, err := p.next()
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("end: %v, want ErrUnexpectedEOF (a message cut short)", err)
			}
			break
		}
		got = append(got, fmt.Sprintf("%s|%s|%s", m.id, m.event, m.data))
	}
	want := []string{`1|event|{"seq":1}`, `2|event|{"seq":2}`, "|message|a\nb", `|error|{"error":{}}`}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	p = newSSEParser(strings.NewReader("data: "+strings.Repeat("x", 2000)+"\n\n"), 1<<10)
	if _, err := p.next(); !errors.Is(err, errLineTooLong) {
		t.Fatalf("a long line: %v", err)
	}
	p = newSSEParser(strings.NewReader(": only a comment\n\n"), 1<<10)
	if _, err := p.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("clean end: %v", err)
	}
}

// FuzzSSEParser: any bytes end in messages and an error, never a panic or
// a message over the limit.
func FuzzSSEParser(f *testing.F) {
	f.Add([]byte("id: 1\nevent: event\ndata: {}\n\n"))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n: c\n"))
	f.Add([]byte("id\nevent\ndata\n\nretry: x\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := newSSEParser(strings.NewReader(string(b)), 256)
		for range len(b) + 1 {
			m, err := p.next()
			if err != nil {
				return
			}
			if len(m.data) > len(b) || m.event == "" {
				t.Fatalf("message %+v from %d bytes", m, len(b))
			}
		}
		t.Fatal("more messages than bytes")
	})
}

// sseServer is a scripted stream server: each connection gets the next
// script, which receives the request and writes what it wants.
type sseServer struct {
	mu      sync.Mutex
	scripts []func(w http.ResponseWriter, r *http.Request)
	queries []string
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.queries = append(s.queries, r.URL.RawQuery)
	i := len(s.queries) - 1
	s.mu.Unlock()
	if i >= len(s.scripts) {
		<-r.Context().Done()
		return
	}
	s.scripts[i](w, r)
}

func sseEvents(w http.ResponseWriter, after string, seqs ...int) {
	w.Header().Set("Content-Type", "text/event-stream")
	if after != "" {
		w.Header().Set("X-Eye-Stream-After", after)
	}
	for _, s := range seqs {
		fmt.Fprintf(w, "id: %d\nevent: event\ndata: {\"seq\":%d,\"id\":\"e%d\"}\n\n", s, s, s)
	}
	w.(http.Flusher).Flush()
}

// TestStreamResumes: after a connection cut inside an event, an error
// event, and a failover to the next server, the stream resumes after the
// last event handed over, skips what it already had, and ends when fn
// says so.
func TestStreamResumes(t *testing.T) {
	a, b := &sseServer{}, &sseServer{}
	a.scripts = []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, _ *http.Request) { // live start at 10; cut inside event 12
			sseEvents(w, "10", 11)
			io.WriteString(w, "id: 12\nevent: event\ndata: {\"se")
		},
		func(w http.ResponseWriter, _ *http.Request) { sseEvents(w, "", 13, 14, 15) },
	}
	b.scripts = []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, _ *http.Request) { // failed over: 11 again (skipped), 12, then shutting down
			sseEvents(w, "", 11, 12)
			io.WriteString(w, "event: error\ndata: {\"error\":{\"code\":\"unavailable\",\"message\":\"shutting down\"}}\n\n")
		},
	}
	sa, sb := httptest.NewServer(a), httptest.NewServer(b)
	defer sa.Close()
	defer sb.Close()
	c, err := New(Config{Servers: []string{sa.URL, sb.URL}, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	stop := errors.New("enough")
	var got []uint64
	err = c.Stream(t.Context(), StreamQuery{Category: "c"}, func(ev StoredEvent) error {
		got = append(got, ev.Seq)
		if ev.Seq == 14 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Stream: %v, want fn's error", err)
	}
	if !slices.Equal(got, []uint64{11, 12, 13, 14}) {
		t.Fatalf("events %v, want 11..14 once each", got)
	}
	if !slices.Equal(a.queries, []string{"category=c", "category=c&from_seq=12"}) || !slices.Equal(b.queries, []string{"category=c&from_seq=11"}) {
		t.Fatalf("queries: a %q, b %q", a.queries, b.queries)
	}
}

// TestStreamRefusedAndIdle: a 4xx ends the stream with the server's
// error; a silent connection is given up after IdleTimeout and the stream
// resumes elsewhere; a context's end ends it.
func TestStreamRefusedAndIdle(t *testing.T) {
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"code":"invalid_parameter","message":"from_seq"}}`)
	}))
	defer refuse.Close()
	c, _ := New(Config{Servers: []string{refuse.URL}})
	defer c.Close(context.Background())
	err := c.Stream(t.Context(), StreamQuery{FromStart: true}, func(StoredEvent) error { return nil })
	var e *Error
	if !errors.As(err, &e) || e.Code != "invalid_parameter" {
		t.Fatalf("refused: %v", err)
	}

	silent := &sseServer{scripts: []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) { sseEvents(w, "", 1); <-r.Context().Done() },
		func(w http.ResponseWriter, _ *http.Request) { sseEvents(w, "", 2) },
	}}
	ss := httptest.NewServer(silent)
	defer ss.Close()
	c2, _ := New(Config{Servers: []string{ss.URL}, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	defer c2.Close(context.Background())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got []uint64
	err = c2.Stream(ctx, StreamQuery{FromSeq: 0, FromStart: true, IdleTimeout: 100 * time.Millisecond}, func(ev StoredEvent) error {
		got = append(got, ev.Seq)
		if ev.Seq == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("idle: %v, events %v", err, got)
	}
	if !slices.Equal(silent.queries, []string{"from_seq=0", "from_seq=1"}) {
		t.Fatalf("queries %q", silent.queries)
	}
}
