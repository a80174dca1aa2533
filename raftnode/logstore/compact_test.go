package logstore

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestLogStoreBackgroundCompaction(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	s.compactMin = 1 << 20        // test threshold: 1 MiB instead of 64 MiB
	payload := make([]byte, 4096) // incompressible
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	// ~8 MiB, flushed so it sits in sstables.
	for i := uint64(1); i <= 2048; i += 256 {
		logs := make([]*raft.Log, 256)
		for j := range logs {
			logs[j] = &raft.Log{Index: i + uint64(j), Term: 1, Data: payload}
		}
		if err := s.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	var lo, hi [logKeyLen]byte
	before, err := s.db.EstimateDiskUsage(putLogKey(lo[:], 1), putLogKey(hi[:], 2000))
	if err != nil || before < 4<<20 {
		t.Fatalf("estimated size of the log before truncation: %d, %v", before, err)
	}
	if err := s.DeleteRange(1, 1999); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return s.compactionsRun.Load() >= 1 })
	after, err := s.db.EstimateDiskUsage(putLogKey(lo[:], 1), putLogKey(hi[:], 2000))
	if err != nil || after > before/4 {
		t.Fatalf("estimated size of the deleted span after compaction: %d (before %d), %v", after, before, err)
	}
	checkBounds(t, s, 2000, 2048)
	for i := uint64(1995); i <= 2048; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); (err == nil) != (i >= 2000) || err == nil && !bytes.Equal(l.Data, payload) {
			t.Fatalf("GetLog(%d) after compaction: %v", i, err)
		}
	}

	// A small deletion does not schedule a compaction.
	if err := s.DeleteRange(2000, 2001); err != nil {
		t.Fatal(err)
	}
	if n := s.compactionsRun.Load(); n != 1 {
		t.Fatalf("compactions after a small delete = %d, want 1", n)
	}
}
