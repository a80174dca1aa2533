package index

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye"
)

// TestValidation_EndToEnd sends one event per reason that needs no schema
// through the indexer and checks where it lands.
func TestValidation_EndToEnd(t *testing.T) {
	src, reg := newFakeSource(), newFakeRegistry()
	reg.setConfig(theeye.ClusterConfig{MaxClockSkew: 5 * time.Minute, MaxEventAge: 24 * time.Hour, UnknownTypes: theeye.UnknownAccept}, 0)
	ix := openTest(t, "", src, func(c *Config) { c.Rules = reg })
	ok := evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime.Add(-time.Minute)}
	type reason struct{ code, field string }
	cases := []struct {
		raw  string
		want []reason // nil: valid
	}{
		{ok.raw(), nil},
		{`{"category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01T08:59:00Z"}`, []reason{{theeye.ReasonMissingField, "/session_id"}}},
		{`{"session_id":"","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01T08:59:00Z"}`, []reason{{theeye.ReasonMissingField, "/session_id"}}},
		{strings.Replace(ok.raw(), `"name":"n"`, `"name":["n"]`, 1), []reason{{theeye.ReasonWrongType, "/name"}}},
		{strings.Replace(ok.raw(), `{"k":1}`, `"str"`, 1), []reason{{theeye.ReasonWrongType, "/data"}}},
		{strings.Replace(ok.raw(), `"session_id"`, `"seq":3,"session_id"`, 1), []reason{{theeye.ReasonReservedField, "/seq"}}},
		{strings.Replace(ok.raw(), `"session_id"`, `"app":"x","received_at":"y","session_id"`, 1),
			[]reason{{theeye.ReasonReservedField, "/app"}, {theeye.ReasonReservedField, "/received_at"}}},
		{strings.Replace(ok.raw(), `{"k":1}`, `{ }`, 1), []reason{{theeye.ReasonEmptyData, "/data"}}},
		{evt{Session: "s", Category: "c", Name: "n"}.raw(), []reason{{theeye.ReasonInvalidTimestamp, "/timestamp"}}},
		{evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime.Add(10 * time.Minute)}.raw(), []reason{{theeye.ReasonTimestampInFuture, "/timestamp"}}},
		{evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime.Add(-25 * time.Hour)}.raw(), []reason{{theeye.ReasonTimestampTooOld, "/timestamp"}}},
		{`{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 08:59:00"} trailing`, []reason{{theeye.ReasonInvalidJSON, ""}}},
	}
	for _, c := range cases {
		src.Append(mkEnv("app", baseTime, c.raw))
	}
	indexAll(t, ix)

	recs, _ := errorRecords(t, ix, ErrorQuery{})
	bySeq := map[uint64]errRecord{}
	for _, r := range recs {
		bySeq[r.Seq] = r
	}
	evs, _ := events(t, ix, EventQuery{})
	valid := seqs(evs)
	wantErrors := 0
	for i, c := range cases {
		seq := uint64(i + 1)
		rec, isErr := bySeq[seq]
		if c.want == nil {
			if isErr || !slices.Contains(valid, seq) {
				t.Errorf("case %d (%s): valid event not among events (error: %v)", i, c.raw, rec.Reasons)
			}
			continue
		}
		wantErrors++
		if !isErr {
			t.Errorf("case %d (%s): not in errors", i, c.raw)
			continue
		}
		if slices.Contains(valid, seq) {
			t.Errorf("case %d: invalid event among events", i)
		}
		var got []reason
		for _, r := range rec.Reasons {
			got = append(got, reason{r.Code, r.Field})
			if r.Message == "" {
				t.Errorf("case %d: reason %s has no message", i, r.Code)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("case %d (%s): reasons %v, want %v", i, c.raw, got, c.want)
		}
		if rec.App != "app" || !rec.ReceivedAt.Equal(baseTime) || len(rec.Event) == 0 || rec.ID == "" {
			t.Errorf("case %d: record %+v", i, rec)
		}
	}
	st := ix.Stats()
	if st.Errors != uint64(wantErrors) || st.Events != uint64(len(cases)-wantErrors) || st.IndexedSeq != uint64(len(cases)) {
		t.Errorf("stats %+v, want %d errors of %d", st, wantErrors, len(cases))
	}
}

// TestValidation_Determinism pins invariant 3: the verdict depends on
// received_at (a day ago here), never on the indexing node's clock.
func TestValidation_Determinism(t *testing.T) {
	src := newFakeSource()
	ix := openTest(t, "", src) // no rules: the default config, 5 minutes of skew
	recv := time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Millisecond)
	src.Append(
		mkEnv("a", recv, evt{Session: "s", Category: "c", Name: "n", Timestamp: recv.Add(time.Minute)}.raw()),
		mkEnv("a", recv, evt{Session: "s", Category: "c", Name: "n", Timestamp: recv.Add(10 * time.Minute)}.raw()),
	)
	indexAll(t, ix)
	evs, _ := events(t, ix, EventQuery{Session: "s"})
	if got := seqs(evs); !slices.Equal(got, []uint64{1}) {
		t.Errorf("valid events: %v, want [1]", got)
	}
	recs, _ := errorRecords(t, ix, ErrorQuery{})
	if len(recs) != 1 || recs[0].Seq != 2 || len(recs[0].Reasons) != 1 || recs[0].Reasons[0].Code != theeye.ReasonTimestampInFuture {
		t.Fatalf("errors: %+v, want seq 2 timestamp_in_future (although it is in the past of the wall clock)", recs)
	}
}

// TestValidation_ConfigBySeq pins invariant 10: an event is judged by the
// cluster config in force at its seq, whenever the indexer gets to it.
func TestValidation_ConfigBySeq(t *testing.T) {
	src, reg := newFakeSource(), newFakeRegistry()
	ix := openTest(t, "", src, func(c *Config) { c.Rules = reg })
	late := evt{Session: "s", Category: "c", Name: "n", Timestamp: baseTime.Add(10 * time.Minute)}.raw()
	src.Append(mkEnv("a", baseTime, late)) // 1: the default 5 minutes of skew: in the future
	reg.setConfig(theeye.ClusterConfig{MaxClockSkew: time.Hour, UnknownTypes: theeye.UnknownAccept}, src.LastSeq())
	src.Append(mkEnv("a", baseTime, late)) // 2: an hour of skew: valid
	reg.setConfig(theeye.ClusterConfig{MaxClockSkew: time.Hour, UnknownTypes: theeye.UnknownReject}, src.LastSeq())
	src.Append(mkEnv("a", baseTime, late)) // 3: no schema for c/n, and unknown types are rejected now
	indexAll(t, ix)                        // after every change: only seq decides
	evs, _ := events(t, ix, EventQuery{})
	if got := seqs(evs); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("valid events %v, want [2]", got)
	}
	recs, _ := errorRecords(t, ix, ErrorQuery{})
	if len(recs) != 2 || recs[0].Reasons[0].Code != theeye.ReasonTimestampInFuture || recs[1].Reasons[0].Code != theeye.ReasonUnknownEventType {
		t.Fatalf("errors %+v, want seq 1 timestamp_in_future and seq 3 unknown_event_type", recs)
	}
}
