package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/theeye/theeye/log"
)

// TestGapBelowSnapshot: a node whose log/ lost events below its newest
// snapshot (a crash before a sync, tail damage) appends them again from
// the Raft log store when it still holds them, and otherwise refuses to
// start: it never goes on with a hole in its seqs.
func TestGapBelowSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name     string
		trailing uint64
		repaired bool
	}{{"repaired from the Raft log store", 1000, true}, {"refused", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			rc := fastRaft()
			rc.TrailingLogs = tc.trailing
			dir := t.TempDir()
			n := openTestNodeWith(t, "n1", dir, "", true, rc)
			waitLeader(t, n.Node)
			for i := range 5 {
				if _, err := n.Append(context.Background(), envs(fmt.Sprint(i), 20)); err != nil {
					t.Fatal(err)
				}
			}
			if err := n.Snapshot(); err != nil {
				t.Fatal(err)
			}
			want := readAll(t, n.log)
			n.close(t)
			if err := os.RemoveAll(filepath.Join(dir, "log")); err != nil {
				t.Fatal(err)
			}
			if tc.repaired {
				again := openTestNodeWith(t, "n1", dir, "", true, rc)
				if got := readAll(t, again.log); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("repaired log holds %d events, want the %d it had", len(got), len(want))
				}
				return
			}
			l, err := log.Open(filepath.Join(dir, "log"), log.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			_, err = Open(Config{NodeID: "n1", Dir: filepath.Join(dir, "raft"), RaftAddr: "127.0.0.1:0", Log: l, Raft: rc, ClusterKey: "k"})
			if !errors.Is(err, ErrGap) {
				t.Fatalf("open with a gap below the snapshot: %v, want ErrGap", err)
			}
		})
	}
}
