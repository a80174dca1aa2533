package logstore

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// BenchmarkStoreLogs measures one StoreLogs call (one synced Pebble batch)
// of `entries` entries of `size` payload bytes. Like raft after a snapshot,
// the benchmark truncates the log prefix outside the timer whenever more
// than ~64 MiB is retained, so long runs measure a steady state and do not
// fill the disk.
func BenchmarkStoreLogs(b *testing.B) {
	for _, size := range []int{300, 30000} {
		for _, entries := range []int{1, 64} {
			b.Run(fmt.Sprintf("store=pebble/entries=%d/size=%d", entries, size), func(b *testing.B) {
				benchStoreLogs(b, entries, size)
			})
		}
	}
}

func benchStoreLogs(b *testing.B, entries, size int) {
	s, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	}()
	payload := bytes.Repeat([]byte(`{"event":"page_view","session":"0123456789abcdef"}`), size/50+1)[:size]
	logs := make([]*raft.Log, entries)
	for i := range logs {
		logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: payload}
	}
	const retainBytes = 64 << 20
	retain := uint64(max(retainBytes/size, 2*entries))

	b.ReportAllocs()
	b.SetBytes(int64(entries * size))
	b.ResetTimer()
	next := uint64(1)
	for range b.N {
		now := time.Now()
		for _, l := range logs {
			l.Index = next
			l.AppendedAt = now
			next++
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
		if last, first := next-1, s.bounds.Load().first; last-first > 2*retain {
			b.StopTimer()
			if err := s.DeleteRange(first, last-retain); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*entries)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkLogStoreGetLog measures a point read of a 300-byte entry (what
// raft's replication does for every entry it sends to a follower).
func BenchmarkLogStoreGetLog(b *testing.B) {
	s, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 4096
	payload := bytes.Repeat([]byte("x"), 300)
	logs := make([]*raft.Log, n)
	for i := range logs {
		logs[i] = &raft.Log{Index: uint64(i + 1), Term: 1, Data: payload, AppendedAt: time.Now()}
	}
	if err := s.StoreLogs(logs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(300)
	var l raft.Log
	i := 0
	for b.Loop() {
		if err := s.GetLog(uint64(i%n+1), &l); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
