package theeyetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// One regexp reads both listening lines: theeye's, with its Raft port,
// and the no-op server's, without.
func TestListeningLine(t *testing.T) {
	for _, c := range []struct{ line, http, raft string }{
		{`time=x level=INFO msg="theeye listening" http=127.0.0.1:4000 raft=127.0.0.1:4001 raft_listen=127.0.0.1:4001 node=n1`, "127.0.0.1:4000", "4001"},
		{`time=x level=INFO msg="theeye listening" http=127.0.0.1:4000 node=noop`, "127.0.0.1:4000", ""},
	} {
		m := listening.FindStringSubmatch(c.line)
		if m == nil || m[1] != c.http || m[2] != c.raft {
			t.Errorf("%s: %q, want http %s raft %q", c.line, m, c.http, c.raft)
		}
	}
}

func TestSyncBufferTail(t *testing.T) {
	b := &SyncBuffer{Max: 8}
	for _, s := range []string{"0123", "4567", "89ab"} {
		b.Write([]byte(s))
	}
	if got := b.String(); got != "456789ab" {
		t.Fatalf("tail %q, want %q", got, "456789ab")
	}
	all := &SyncBuffer{}
	all.Write([]byte(strings.Repeat("x", 1000)))
	if len(all.String()) != 1000 {
		t.Fatalf("an unbounded buffer kept %d bytes", len(all.String()))
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	if err := Poll(time.Minute, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || calls != 3 {
		t.Fatalf("Poll: %v after %d calls", err, calls)
	}
	bad := errors.New("bad")
	if err := Poll(time.Minute, func() error { return Stop(bad) }); err != bad {
		t.Fatalf("Poll of a stopped fn: %v, want %v", err, bad)
	}
	if err := Poll(0, func() error { return bad }); !errors.Is(err, bad) {
		t.Fatalf("Poll past its timeout: %v, want it to wrap %v", err, bad)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := PollContext(ctx, time.Minute, func() error { return bad }); !errors.Is(err, context.Canceled) || !errors.Is(err, bad) {
		t.Fatalf("PollContext of a done ctx: %v", err)
	}
}
