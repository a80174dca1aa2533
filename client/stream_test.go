package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/theeye/theeye/client"
)

// streamed collects what a Stream hands over, for a test to wait on.
type streamed struct {
	mu   sync.Mutex
	seqs []uint64
	ids  []string
}

func (s *streamed) add(ev client.StoredEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs = append(s.seqs, ev.Seq)
	s.ids = append(s.ids, ev.ID)
	return nil
}

func (s *streamed) snapshot() ([]uint64, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seqs), slices.Clone(s.ids)
}

// TestStreamAcrossRestart: a stream from the start of the log hands over
// every valid event of its filter once, in seq order, across a kill -9
// and restart of the node (the client reconnects and resumes after the
// last event it delivered); invalid events never come.
func TestStreamAcrossRestart(t *testing.T) {
	n := startNode(t)
	key := newApp(t, n)
	in := newClient(t, client.Config{Servers: []string{n.URL}, Key: key})
	reader := newClient(t, client.Config{Servers: []string{n.URL}, Key: adminKey, MaxRetries: 100,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	session := sess(t, "stream")
	send := func(from, to int) []string {
		var evs []client.Event
		var valid []string
		for i := from; i < to; i++ {
			e := ev(session, i)
			if i%5 == 4 {
				e.Timestamp = time.Now().Add(time.Hour) // timestamp_in_future: never streamed
			} else {
				valid = append(valid, e.ID)
			}
			evs = append(evs, e, ev(sess(t, "other"), i)) // another session: filtered out
		}
		if _, err := in.Ingest(testCtx(t), evs); err != nil {
			t.Fatal(err)
		}
		return valid
	}
	want := send(0, 20)

	var got streamed
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- reader.Stream(ctx, client.StreamQuery{SessionID: session, FromStart: true}, got.add)
	}()
	wait := func(n int) {
		t.Helper()
		waitFor(t, 60*time.Second, fmt.Sprintf("%d events streamed", n), func() error {
			if seqs, _ := got.snapshot(); len(seqs) < n {
				return fmt.Errorf("%d streamed", len(seqs))
			}
			return nil
		})
	}
	wait(len(want))
	n.Kill9()
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	want = append(want, send(20, 40)...)
	wait(len(want))
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Stream: %v", err)
	}
	seqs, ids := got.snapshot()
	if !slices.Equal(ids, want) || !slices.IsSorted(seqs) {
		t.Fatalf("streamed %d events %v\nwant %d %v", len(ids), ids, len(want), want)
	}
	if reader.Stats().Retried == 0 {
		t.Error("no reconnect counted, yet the node was restarted")
	}
}

// TestEventStatus: an ingest key asks about its own events, a read key
// names the app; indexed, failed, duplicate (a retry, by its seq) and
// not_found.
func TestEventStatus(t *testing.T) {
	key := newApp(t, shared)
	in := newClient(t, client.Config{Key: key})
	admin := adminClient(t, shared)
	ok, bad := ev(sess(t, "status"), 0), ev(sess(t, "status"), 1)
	bad.Timestamp = time.Now().Add(time.Hour)
	a, err := in.Ingest(testCtx(t), []client.Event{ok, bad})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := in.Ingest(testCtx(t), []client.Event{ok})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "indexed", func() error {
		if st, err := in.Status(testCtx(t), "", bad.ID); err != nil || st.Status != client.StatusFailed {
			return fmt.Errorf("%+v, %w", st, err)
		}
		return nil
	})
	st, err := in.Status(testCtx(t), "", ok.ID)
	if err != nil || st.Status != client.StatusIndexed || st.Seq != a.Seq-1 || st.App != appName(t) {
		t.Fatalf("ok: %+v, %v", st, err)
	}
	st, err = admin.Status(testCtx(t), appName(t), bad.ID)
	if err != nil || st.Status != client.StatusFailed || len(st.Reasons) != 1 || st.Reasons[0].Code != "timestamp_in_future" {
		t.Fatalf("bad: %+v, %v", st, err)
	}
	st, err = admin.StatusAt(testCtx(t), appName(t), ok.ID, retry.Seq)
	if err != nil || st.Status != client.StatusDuplicate || st.DuplicateOf != a.Seq-1 {
		t.Fatalf("retry: %+v, %v", st, err)
	}
	var e *client.Error
	if _, err := admin.Status(testCtx(t), appName(t), "never-sent"); !errors.As(err, &e) || e.Code != "not_found" {
		t.Fatalf("never sent: %v", err)
	}
	if _, err := admin.Status(testCtx(t), "", ok.ID); !errors.As(err, &e) || e.Code != "invalid_parameter" {
		t.Fatalf("a read key without app: %v", err)
	}
}
