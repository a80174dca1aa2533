package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/theeye/theeye/index"
	eyelog "github.com/theeye/theeye/log"
	"github.com/theeye/theeye/raftnode"
)

// failingIndex answers every query with err.
type failingIndex struct {
	fakeIndex
	err error
}

func (f *failingIndex) Events(context.Context, index.EventQuery, func([]byte) error) (string, error) {
	return "", f.err
}

// TestErrorAnswers: an internal error's text stays in the node's log (the
// client gets what to do and a reference), closed stores and cancelled
// requests are 503 with Retry-After.
func TestErrorAnswers(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		hide   string
	}{
		{errors.New("pebble: corrupt sstable /var/lib/theeye/index/000123.sst"), 500, "/var/lib"},
		{index.ErrClosed, 503, ""},
		{eyelog.ErrClosed, 503, ""},
		{raftnode.ErrClosed, 503, ""},
		{context.Canceled, 503, ""},
		{context.DeadlineExceeded, 503, ""},
	} {
		s := New(Config{Node: newKeyNode(), Index: &failingIndex{err: tc.err}})
		req := httptest.NewRequest("GET", "/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+fakeAdminSecret)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != tc.status {
			t.Errorf("%v: %d %s, want %d", tc.err, rec.Code, body, tc.status)
		}
		if tc.hide != "" && strings.Contains(body, tc.hide) {
			t.Errorf("%v: the answer shows the internal error: %s", tc.err, body)
		}
		if tc.status == 500 && (!strings.Contains(body, "retry") || !strings.Contains(body, `"ref"`)) {
			t.Errorf("a 500 without what to do and a reference: %s", body)
		}
		if tc.status == 503 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%v: 503 without Retry-After", tc.err)
		}
	}
}

// TestMethodLabels: made-up methods are counted under one label.
func TestMethodLabels(t *testing.T) {
	for m, want := range map[string]string{http.MethodGet: "GET", http.MethodPatch: "PATCH", "BREW": "other", "get": "other"} {
		if got := methodLabel(m); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", m, got, want)
		}
	}
}
