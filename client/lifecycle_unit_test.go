package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// These tests fake the server with httptest for what a real node cannot
// be made to do on demand: cut an export in the middle, refuse with a
// given status, answer a body that is not JSON.

func fakeClient(t *testing.T, retries int, servers ...string) *Client {
	t.Helper()
	c, err := New(Config{Servers: servers, MaxRetries: retries, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(t.Context()) })
	return c
}

func fakeServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func exportLine(seq int, ts string) string {
	return fmt.Sprintf(`{"seq":%d,"id":"e%d","app":"a","session_id":"s","category":"c","name":"n","data":{"i":%d},"timestamp":%q,"received_at":"2021-01-01T00:00:00Z"}`+"\n", seq, seq, seq, ts)
}

// TestExportResumes: an answer cut after two events is resumed from the
// last timestamp written, of a node indexed as far, and the events the
// second answer repeats are skipped: each event once, in order.
func TestExportResumes(t *testing.T) {
	const t1, t2, t3 = "2021-01-01T09:00:00Z", "2021-01-01T09:00:01.5Z", "2021-01-01T09:00:02Z"
	var calls atomic.Int32
	var second string
	s := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/x-ndjson" || r.URL.Path != "/v1/sessions/s 1/events" {
			t.Errorf("request %s %s Accept %q", r.Method, r.URL, r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("X-Eye-Indexed-Seq", "40")
		if calls.Add(1) == 1 {
			io.WriteString(w, exportLine(1, t1)+exportLine(2, t2))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-answer
		}
		second = r.URL.RawQuery
		io.WriteString(w, exportLine(2, t2)+exportLine(3, t2)+exportLine(4, t3))
	})
	var out bytes.Buffer
	res, err := fakeClient(t, 2, s.URL).Export(t.Context(), ExportQuery{SessionID: "s 1"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := exportLine(1, t1) + exportLine(2, t2) + exportLine(3, t2) + exportLine(4, t3)
	if out.String() != want {
		t.Errorf("wrote\n%s\nwant\n%s", out.String(), want)
	}
	if res.Events != 4 || res.Resumed != 1 || res.LastSeq != 4 || res.IndexedSeq != 40 || res.Bytes != int64(len(want)) {
		t.Errorf("result %+v", res)
	}
	if second != "from=2021-01-01T09%3A00%3A01.5Z&min_seq=40" {
		t.Errorf("the resumed query is %q", second)
	}
}

// TestExportCut: a server that ends every answer with its error line, and
// writes nothing new, makes Export give up with ErrExportCut and the
// server's error; a writer that fails ends it at once.
func TestExportCut(t *testing.T) {
	var calls atomic.Int32
	s := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, exportLine(1, "2021-01-01T09:00:00Z"))
		io.WriteString(w, `{"error":{"code":"unavailable","message":"the node is shutting down; retry on another node"}}`+"\n")
	})
	var out bytes.Buffer
	res, err := fakeClient(t, 2, s.URL).Export(t.Context(), ExportQuery{Category: "c"}, &out)
	var e *Error
	if !errors.Is(err, ErrExportCut) || !errors.As(err, &e) || e.Status != 503 || !strings.Contains(e.Message, "shutting down") {
		t.Fatalf("err %v, want ErrExportCut with the server's 503", err)
	}
	if res.Events != 1 || strings.Count(out.String(), "\n") != 1 || calls.Load() != 4 {
		t.Errorf("result %+v, %d answers, wrote %q", res, calls.Load(), out.String())
	}
	_, err = fakeClient(t, 2, s.URL).Export(t.Context(), ExportQuery{Category: "c"}, failingWriter{})
	if err == nil || errors.Is(err, ErrExportCut) || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("a failing writer: %v", err)
	}
	if _, err := fakeClient(t, 2, s.URL).Export(t.Context(), ExportQuery{SessionID: "s", App: "a"}, &out); err == nil {
		t.Error("a session export with an app: no error")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestRefusalsAndBadBodies: the server's refusal reaches the caller with
// its status, code, message and details; a body that is not the JSON
// expected is an error naming the route.
func TestRefusalsAndBadBodies(t *testing.T) {
	s := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/errors/summary":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":{"code":"forbidden","message":"this key lacks the read scope"}}`)
		case "/v1/config":
			b, _ := io.ReadAll(r.Body)
			if r.Method != http.MethodPut || string(b) != `{"retention":"500ms"}` {
				t.Errorf("%s %s", r.Method, b)
			}
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":"invalid_request","message":"retention 500ms: want 0s (keep for ever) or a duration of a second or more","details":{"field":"retention"}}}`)
		case "/v1/deletions/del_7":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"del_7", "status": "done", "events_deleted": 3`) // cut
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	c := fakeClient(t, 1, s.URL)
	var e *Error
	_, err := c.ErrorsSummary(t.Context(), ErrorsSummaryQuery{})
	if !errors.As(err, &e) || e.Status != 403 || e.Code != "forbidden" || e.Message != "this key lacks the read scope" {
		t.Errorf("403: %v", err)
	}
	d := 500 * time.Millisecond
	_, err = c.PutClusterConfig(t.Context(), ConfigPatch{Retention: &d})
	if !errors.As(err, &e) || e.Status != 400 || e.Details["field"] != "retention" || !strings.Contains(err.Error(), "a second or more") {
		t.Errorf("400: %v", err)
	}
	if _, err := c.PutClusterConfig(t.Context(), ConfigPatch{}); err == nil {
		t.Error("an empty patch: no error")
	}
	if _, err := c.Deletion(t.Context(), "del_7"); err == nil || !strings.Contains(err.Error(), "decode answer of GET /v1/deletions/del_7") {
		t.Errorf("a cut body: %v", err)
	}
}

// TestDeletionOn asks the node named, and only it, whatever the client's
// servers.
func TestDeletionOn(t *testing.T) {
	a := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("server a asked %s", r.URL)
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	b := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/deletions/del_3" {
			t.Errorf("%s %s", r.Method, r.URL)
		}
		io.WriteString(w, `{"id":"del_3","session_id":"s","at_seq":9,"status":"done","events_deleted":3,"done_at":"2021-01-01T00:00:00Z"}`)
	})
	c := fakeClient(t, 0, a.URL)
	d, err := c.DeletionOn(t.Context(), b.URL, "del_3")
	if err != nil || !d.Done() || d.EventsDeleted != 3 || d.AtSeq != 9 || d.DoneAt.IsZero() {
		t.Fatalf("%+v %v", d, err)
	}
	if _, err := c.DeletionOn(t.Context(), b.URL, "a/b"); err == nil {
		t.Error("an id with a slash: no error")
	}
}
