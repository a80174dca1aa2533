package index

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/theeye/theeye"
)

// TestEventStatus: every outcome of an id, for its owner and for each
// copy by seq, on an index that has not indexed the whole log.
func TestEventStatus(t *testing.T) {
	src := newFakeSource()
	reg := newFakeRegistry()
	ix := openTest(t, "", src, func(c *Config) { c.Rules = reg })
	ev := func(id string, sec int) string {
		return evt{ID: id, Session: "s", Category: "c", Name: "n", Timestamp: baseTime.Add(time.Duration(-sec) * time.Second)}.raw()
	}
	future := evt{ID: "late", Session: "s", Category: "c", Name: "n", Timestamp: baseTime.Add(time.Hour)}.raw()
	src.Append(mkEnv("a", baseTime, ev("ok", 1)))                          // 1 indexed
	src.Append(mkEnv("a", baseTime, ev("ok", 1)))                          // 2 duplicate of 1
	src.Append(mkEnv("a", baseTime, ev("ok", 2)))                          // 3 duplicate_id_conflict
	src.Append(mkEnv("a", baseTime, future))                               // 4 failed
	src.Append(mkEnv("b", baseTime, ev("ok", 1)))                          // 5 another app's "ok": indexed
	src.Append(theeye.Envelope{ReceivedAt: baseTime.UnixNano(), App: "a"}) // 6 erased
	indexAll(t, ix)
	src.Append(mkEnv("a", baseTime, ev("new", 1)))                                                                                                     // 7 pending
	src.Append(mkEnv("a", baseTime, ev("ok", 1)))                                                                                                      // 8 pending retry of 1
	src.Append(mkEnv("a", baseTime, `{"id":"\u0065sc","session_id":"s","category":"c","name":"n","data":{"k":1},"timestamp":"2021-01-01T00:00:00Z"}`)) // 9 pending, id "esc" escaped

	ctx := context.Background()
	for _, tc := range []struct {
		app, id string
		seq     uint64
		want    EventStatus
		code    string
	}{
		{"a", "ok", 0, EventStatus{Seq: 1, Status: StatusIndexed}, ""},
		{"a", "ok", 1, EventStatus{Seq: 1, Status: StatusIndexed}, ""},
		{"a", "ok", 2, EventStatus{Seq: 2, Status: StatusDuplicate, DuplicateOf: 1}, ""},
		{"a", "ok", 3, EventStatus{Seq: 3, Status: StatusFailed}, ""},
		{"a", "ok", 8, EventStatus{Seq: 8, Status: StatusPending}, ""},
		{"a", "late", 0, EventStatus{Seq: 4, Status: StatusFailed}, ""},
		{"b", "ok", 0, EventStatus{Seq: 5, Status: StatusIndexed}, ""},
		{"a", "new", 0, EventStatus{Seq: 7, Status: StatusPending}, ""},
		{"a", "esc", 0, EventStatus{Seq: 9, Status: StatusPending}, ""},
		{"a", "nope", 0, EventStatus{}, theeye.ENotFound},
		{"c", "ok", 0, EventStatus{}, theeye.ENotFound},  // another app never sent it
		{"a", "ok", 5, EventStatus{}, theeye.ENotFound},  // seq 5 is b's
		{"a", "ok", 6, EventStatus{}, theeye.ENotFound},  // erased
		{"a", "ok", 99, EventStatus{}, theeye.ENotFound}, // past the log
		{"a", "", 0, EventStatus{}, theeye.EInvalidParam},
	} {
		st, err := ix.EventStatus(ctx, tc.app, tc.id, tc.seq)
		if tc.code != "" {
			if theeye.ErrorCode(err) != tc.code {
				t.Errorf("%s/%s@%d: %+v, %v; want %s", tc.app, tc.id, tc.seq, st, err, tc.code)
			}
			continue
		}
		if err != nil || st.Seq != tc.want.Seq || st.Status != tc.want.Status || st.DuplicateOf != tc.want.DuplicateOf ||
			st.ID != tc.id || st.App != tc.app || st.Reasons == nil {
			t.Errorf("%s/%s@%d: %+v, %v; want %+v", tc.app, tc.id, tc.seq, st, err, tc.want)
		}
	}
	codes := func(id string, seq uint64) []string {
		st, err := ix.EventStatus(ctx, "a", id, seq)
		if err != nil {
			t.Fatal(err)
		}
		var cs []string
		for _, r := range st.Reasons {
			cs = append(cs, r.Code)
		}
		return cs
	}
	if cs := codes("late", 0); !slices.Equal(cs, []string{theeye.ReasonTimestampInFuture}) {
		t.Errorf("late: reasons %v", cs)
	}
	if cs := codes("ok", 3); !slices.Equal(cs, []string{theeye.ReasonDuplicateIDConflict}) {
		t.Errorf("conflict: reasons %v", cs)
	}

	// Once indexed, pending becomes the outcome.
	indexAll(t, ix)
	if st, err := ix.EventStatus(ctx, "a", "new", 0); err != nil || st.Status != StatusIndexed || st.Seq != 7 {
		t.Errorf("new after indexing: %+v, %v", st, err)
	}
	if st, err := ix.EventStatus(ctx, "a", "ok", 8); err != nil || st.Status != StatusDuplicate || st.DuplicateOf != 1 {
		t.Errorf("retry after indexing: %+v, %v", st, err)
	}

	// Past the retention cut: gone.
	reg.mu.Lock()
	reg.retainFrom = 3
	reg.mu.Unlock()
	if _, err := ix.EventStatus(ctx, "a", "ok", 0); theeye.ErrorCode(err) != theeye.ENotFound {
		t.Errorf("owner below the cut: %v", err)
	}
}

// TestEventStatus_ScanIsCapped: an id not indexed yet is looked for among
// the newest events past the cursor only; when the rest may hold it the
// answer says so (unavailable), not not_found.
func TestEventStatus_ScanIsCapped(t *testing.T) {
	src := newFakeSource()
	ix := openTest(t, "", src)
	for i := range 50 {
		id := "x"
		if i == 10 {
			id = "old"
		}
		if i == 45 {
			id = "recent"
		}
		src.Append(mkEnv("a", baseTime, evt{ID: id + string(rune('A'+i)), Session: "s", Category: "c", Name: "n", Timestamp: baseTime}.raw()))
	}
	ctx := context.Background()
	if st, err := ix.eventStatus(ctx, "a", "recent"+string(rune('A'+45)), 0, 20); err != nil || st.Status != StatusPending || st.Seq != 46 {
		t.Fatalf("recent: %+v, %v", st, err)
	}
	if _, err := ix.eventStatus(ctx, "a", "old"+string(rune('A'+10)), 0, 20); theeye.ErrorCode(err) != theeye.EUnavailable {
		t.Fatalf("beyond the cap: %v, want unavailable", err)
	}
	if st, err := ix.eventStatus(ctx, "a", "old"+string(rune('A'+10)), 0, 50); err != nil || st.Seq != 11 {
		t.Fatalf("within the cap: %+v, %v", st, err)
	}
	if _, err := ix.eventStatus(ctx, "a", "never", 0, 50); theeye.ErrorCode(err) != theeye.ENotFound {
		t.Fatalf("never sent: %v", err)
	}
}

// BenchmarkEventStatusPendingScan: the worst case of a status, an id not
// in the index looked for among StatusScanLimit events.
func BenchmarkEventStatusPendingScan(b *testing.B) {
	src := newFakeSource()
	for i := range StatusScanLimit {
		src.Append(mkEnv("a", baseTime, evt{ID: "id-" + string(rune('a'+i%26)), Session: "s", Category: "c", Name: "n", Timestamp: baseTime}.raw()))
	}
	ix := openTest(b, "", src)
	for b.Loop() {
		if _, err := ix.EventStatus(context.Background(), "a", "nowhere", 0); theeye.ErrorCode(err) != theeye.ENotFound {
			b.Fatal(err)
		}
	}
}
