package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/theeye/theeye/client"
)

// TestEventStats: counts by bucket and type, read after an Ack (MinSeq),
// dense over the range; a bad interval is refused before sending, a bad
// range by the server with a *client.Error.
func TestEventStats(t *testing.T) {
	key := newApp(t, shared)
	c := newClient(t, client.Config{Key: key})
	cat := "stats " + nonce(t) // the shared node counts every test's events: a category of our own
	base := time.Date(2022, 3, 4, 5, 0, 0, 0, time.UTC)
	var evs []client.Event
	for i := range 10 {
		e := ev(sess(t, "stats"), i)
		e.Category, e.Timestamp = cat, base.Add(time.Duration(i)*17*time.Minute) // hours 5 to 7
		if i%3 == 0 {
			e.Name = "click"
		}
		evs = append(evs, e)
	}
	a, err := c.Ingest(testCtx(t), evs)
	if err != nil {
		t.Fatal(err)
	}
	admin := adminClient(t, shared)
	st, err := admin.EventStats(testCtx(t), client.StatsQuery{Interval: time.Hour, From: base.Add(-time.Hour), To: base.Add(4 * time.Hour),
		Category: cat, MinSeq: a.Seq})
	if err != nil {
		t.Fatal(err)
	}
	if st.Interval != time.Hour || len(st.Buckets) != 5 || st.IndexedSeq < a.Seq {
		t.Fatalf("%s, %d buckets, at seq %d (ack %d)", st.Interval, len(st.Buckets), st.IndexedSeq, a.Seq)
	}
	want := []uint64{0, 4, 4, 2, 0} // 0, 17, 34, 51 | 68, 85, 102, 119 | 136, 153 minutes past 5:00
	for i, b := range st.Buckets {
		if !b.Start.Equal(base.Add(time.Duration(i-1)*time.Hour)) || b.Total != want[i] {
			t.Fatalf("bucket %d: %v %d, want %v %d", i, b.Start, b.Total, base.Add(time.Duration(i-1)*time.Hour), want[i])
		}
	}
	if bt := st.Buckets[1].ByType; len(bt) != 2 || bt[0] != (client.TypeCount{Category: cat, Name: "click", Count: 2}) || bt[1].Name != "pageview" || bt[1].Count != 2 {
		t.Fatalf("by type %+v", bt)
	}
	st, err = admin.EventStats(testCtx(t), client.StatsQuery{Interval: 24 * time.Hour, From: base, To: base.Add(time.Hour), Category: cat, Name: "click"})
	if err != nil || len(st.Buckets) != 1 || st.Buckets[0].Total != 4 {
		t.Fatalf("a day of clicks: %+v, %v", st, err)
	}

	if _, err := admin.EventStats(testCtx(t), client.StatsQuery{Interval: 5 * time.Minute}); err == nil {
		t.Fatal("an interval the server does not know was sent")
	}
	_, err = admin.EventStats(testCtx(t), client.StatsQuery{Interval: time.Minute, From: base, To: base.Add(30 * 24 * time.Hour)})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "invalid_parameter" {
		t.Fatalf("too many buckets: %v", err)
	}
}
