package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/index"
)

// statusIndex answers EventStatus from a table keyed by app/id.
type statusIndex struct {
	*streamIndex
	asked []string
}

func (x *statusIndex) EventStatus(_ context.Context, app, id string, seq uint64) (index.EventStatus, error) {
	x.asked = append(x.asked, app+"/"+id)
	switch id {
	case "ok":
		return index.EventStatus{ID: id, App: app, Seq: 7, Status: index.StatusIndexed, Reasons: []theeye.Reason{}}, nil
	case "bad":
		return index.EventStatus{ID: id, App: app, Seq: 8, Status: index.StatusFailed,
			Reasons: []theeye.Reason{{Code: theeye.ReasonTimestampInFuture, Field: "/timestamp", Message: "m"}}}, nil
	case "dup":
		return index.EventStatus{ID: id, App: app, Seq: seq, Status: index.StatusDuplicate, Reasons: []theeye.Reason{}, DuplicateOf: 3}, nil
	}
	return index.EventStatus{}, theeye.Errorf(theeye.ENotFound, "this node holds no event of app %q with id %q", app, id)
}

// TestEventStatusRoute: who may ask about which app, the answer's shape,
// and the parameters checked.
func TestEventStatusRoute(t *testing.T) {
	ix := &statusIndex{streamIndex: newStreamIndex()}
	s := New(Config{Node: &streamNode{}, Index: ix})
	get := func(path, key string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, rec.Body)
		}
		return rec.Code, v
	}
	for _, tc := range []struct {
		path, key string
		status    int
		want      string // in the body
		asked     string // app/id the index was asked for
	}{
		{"/v1/events/ok/status", ingestSecret, 200, `"status":"indexed"`, "shop/ok"},
		{"/v1/events/ok/status?app=shop", ingestSecret, 200, `"seq":7`, "shop/ok"},
		{"/v1/events/ok/status?app=other", ingestSecret, 403, "its own app", ""},
		{"/v1/events/ok/status", readSecret, 400, "app is required", ""},
		{"/v1/events/ok/status?app=other", readSecret, 200, `"app":"other"`, "other/ok"},
		{"/v1/events/bad/status?app=shop", readSecret, 200, `"code":"timestamp_in_future"`, "shop/bad"},
		{"/v1/events/dup/status?app=shop&seq=9", readSecret, 200, `"duplicate_of":3`, "shop/dup"},
		{"/v1/events/nope/status?app=shop", readSecret, 404, `"not_found"`, "shop/nope"},
		{"/v1/events/ok/status?app=shop&seq=0", readSecret, 400, "seq", ""},
		{"/v1/events/ok/status?app=shop&seq=x", readSecret, 400, "seq", ""},
		{"/v1/events/" + strings.Repeat("i", 257) + "/status?app=shop", readSecret, 400, "256", ""},
		{"/v1/events/ok/status?app=shop", "nope", 401, "unauthorized", ""},
	} {
		ix.asked = nil
		st, v := get(tc.path, tc.key)
		b, _ := json.Marshal(v)
		if st != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %s, want %d with %s", tc.path, st, b, tc.status, tc.want)
		}
		if asked := strings.Join(ix.asked, ","); asked != tc.asked {
			t.Errorf("%s: the index was asked %q, want %q", tc.path, asked, tc.asked)
		}
		if st == 200 {
			if _, ok := v["reasons"].([]any); !ok {
				t.Errorf("%s: reasons %v, want an array", tc.path, v["reasons"])
			}
		}
	}
	// The route does not swallow its neighbours.
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/events/ok/status", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST status: %d", rec.Code)
	}
}
