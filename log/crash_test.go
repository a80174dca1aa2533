package log

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCrash appends frames on a crashable in-memory FS, syncing now and
// then, crashes at a random point keeping a random share of the unsynced
// writes (Pebble's CrashClone drops or keeps each unsynced 4 KiB block and
// directory entry independently, so holes, zero runs and lost segment files
// all happen), and reopens: every synced event must be there, the log must
// end on a frame boundary of what was appended, and every event returned
// must be exactly what was appended. Appending then carries on.
func TestCrash(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		rng := rand.New(rand.NewPCG(42, uint64(codec)))
		var h countingHandler
		for round := range 20 {
			pct := []int{0, 10, 50, 90, 100}[round%5]
			crashRound(t, codec, rng, pct, slog.New(&h))
		}
		// The test is only worth something if crashes left torn tails.
		if h.n.Load() == 0 {
			t.Fatal("no round needed tail recovery")
		}
		t.Logf("%d tail recoveries", h.n.Load())
	})
}

// countingHandler counts warnings and errors.
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func crashRound(t *testing.T, codec Codec, rng *rand.Rand, unsyncedPct int, logger *slog.Logger) {
	t.Helper()
	cfg := Config{FS: vfs.NewCrashableMem(), SegmentSize: 24 << 10, Logger: logger}
	l, err := Open("log", cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := newTestWriter(t, l, codec)
	// Frame boundaries appended: last seq -> raft index.
	bounds := map[uint64]uint64{0: 0}
	var synced uint64
	for range 20 + rng.IntN(150) {
		w.append(1 + rng.IntN(16))
		bounds[l.LastSeq()] = l.LastRaftIndex()
		if rng.IntN(40) == 0 {
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			synced = l.LastSeq()
		}
	}
	appended := l.LastSeq()
	crashedFS := cfg.FS.(*vfs.MemFS).CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPct, RNG: rng})
	if err := l.Close(); err != nil { // too late for the clone
		t.Fatal(err)
	}

	cfg.FS = crashedFS
	l, err = Open("log", cfg)
	if err != nil {
		t.Fatalf("open after crash (%d%% unsynced kept, synced %d of %d): %v", unsyncedPct, synced, appended, err)
	}
	last := l.LastSeq()
	raft, ok := bounds[last]
	switch {
	case last < synced:
		t.Fatalf("after crash LastSeq %d, but %d was synced", last, synced)
	case !ok:
		t.Fatalf("after crash LastSeq %d is not a frame boundary", last)
	case l.LastRaftIndex() != raft:
		t.Fatalf("after crash LastRaftIndex %d, want %d", l.LastRaftIndex(), raft)
	case unsyncedPct == 100 && last != appended:
		t.Fatalf("nothing lost, yet LastSeq %d, want %d", last, appended)
	}
	checkRead(t, l, 0, math.MaxInt, last)

	// The FSM would now replay the lost entries; carry on appending.
	w = newTestWriter(t, l, codec)
	w.appendFrames(3, 8)
	checkRead(t, l, 0, math.MaxInt, l.LastSeq())

	// A crash right after recovery and three unsynced appends keeps at
	// least the recovered log: recovery's own writes are synced.
	again := crashedFS.CrashClone(vfs.CrashCloneCfg{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.FS = again
	l, err = Open("log", cfg)
	if err != nil {
		t.Fatalf("open after second crash: %v", err)
	}
	defer l.Close()
	if l.LastSeq() < last {
		t.Fatalf("second crash lost recovered events: LastSeq %d < %d", l.LastSeq(), last)
	}
	checkRead(t, l, 0, math.MaxInt, l.LastSeq())
}

// TestCrashDuringSeal crashes between sealing a segment and the first
// frame of the next: the sealed segment is complete and the new one, if it
// survived, is empty.
func TestCrashDuringSeal(t *testing.T) {
	fs := vfs.NewCrashableMem()
	cfg := Config{FS: fs, SegmentSize: 1 << 10}
	l, err := Open("log", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w := newTestWriter(t, l, CodecNone)
	var before []string
	for {
		before, _ = fs.List("log")
		w.append(2)
		after, _ := fs.List("log")
		if len(after) > len(before) {
			break // that append sealed a segment and started another
		}
	}
	// Every frame up to the seal is synced by the seal itself.
	sealedLast := l.LastSeq() - 2
	for _, pct := range []int{0, 50, 100} {
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(1, 2))})
		l2, err := Open("log", Config{FS: crashed, SegmentSize: 1 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if l2.LastSeq() < sealedLast {
			t.Fatalf("LastSeq %d, sealed segment ended at %d", l2.LastSeq(), sealedLast)
		}
		checkRead(t, l2, 0, math.MaxInt, l2.LastSeq())
		names, _ := crashed.List("log")
		if !slices.Contains(names, segmentName(sealedLast+1)) {
			t.Fatalf("segment created at the seal is gone: %v", names)
		}
		l2.Close()
	}
}
