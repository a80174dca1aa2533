package logstore

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Helpers shared by the package's tests.

// waitFor polls cond until it returns true or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		<-tick.C
	}
}

func openTestStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testLog(index uint64) *raft.Log {
	return &raft.Log{
		Index:      index,
		Term:       index/10 + 1,
		Type:       raft.LogCommand,
		Data:       fmt.Appendf(nil, "entry-%d", index),
		AppendedAt: time.Unix(1_700_000_000, int64(index)),
	}
}

func storeRange(t testing.TB, s *Store, from, to uint64) {
	t.Helper()
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, testLog(i))
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs(%d..%d): %v", from, to, err)
	}
}

// checkBounds checks FirstIndex/LastIndex against want and against a fresh
// scan of Pebble.
func checkBounds(t testing.TB, s *Store, wantFirst, wantLast uint64) {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatalf("FirstIndex: %v", err)
	}
	last, err := s.LastIndex()
	if err != nil {
		t.Fatalf("LastIndex: %v", err)
	}
	if first != wantFirst || last != wantLast {
		t.Fatalf("FirstIndex, LastIndex = %d, %d; want %d, %d", first, last, wantFirst, wantLast)
	}
	sf, sl, err := s.scanBounds()
	if err != nil {
		t.Fatalf("scanBounds: %v", err)
	}
	if sf != first || sl != last {
		t.Fatalf("cached bounds %d, %d disagree with Pebble %d, %d", first, last, sf, sl)
	}
}

func checkPresent(t testing.TB, s *Store, present func(uint64) bool, from, to uint64) {
	t.Helper()
	for i := from; i <= to; i++ {
		var l raft.Log
		err := s.GetLog(i, &l)
		switch {
		case present(i) && err != nil:
			t.Fatalf("GetLog(%d): %v", i, err)
		case present(i) && !bytes.Equal(l.Data, testLog(i).Data):
			t.Fatalf("GetLog(%d).Data = %.40q", i, l.Data)
		case !present(i) && err != raft.ErrLogNotFound: // raft compares with ==
			t.Fatalf("GetLog(%d) after delete: err = %v, want raft.ErrLogNotFound", i, err)
		}
	}
}

func logsEqual(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		reflect.DeepEqual(a.Data, b.Data) && reflect.DeepEqual(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt) && a.AppendedAt.IsZero() == b.AppendedAt.IsZero()
}

func abbrev(l *raft.Log) raft.Log {
	c := *l
	if len(c.Data) > 32 {
		c.Data = c.Data[:32]
	}
	return c
}
