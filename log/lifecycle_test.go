package log

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/theeye/theeye"
)

// readSeqs returns, seq by seq, the raw bytes of every event of l.
func readSeqs(t *testing.T, l *Log) map[uint64][]byte {
	t.Helper()
	out := map[uint64][]byte{}
	if _, err := l.ReadFrom(1, 1<<30, func(seq uint64, env *theeye.Envelope) error {
		out[seq] = bytes.Clone(env.Raw)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDropBefore: whole segments below a seq go, the first seq survives a
// reopen, a crash between recording it and deleting the files leaves no
// segment behind, and reads below it find nothing.
func TestDropBefore(t *testing.T) {
	fs := vfs.NewMem()
	l, err := Open("log", Config{FS: fs, SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	w := newTestWriter(t, l, CodecNone)
	w.appendFrames(60, 5)
	last := l.LastSeq()
	if len(l.segments) < 4 {
		t.Fatalf("%d segments: the test needs several", len(l.segments))
	}
	cut := l.segments[2].firstSeq + 1 // inside the third segment
	n, freed, err := l.DropBefore(cut)
	if err != nil || n != 2 || freed == 0 {
		t.Fatalf("drop: %d segments, %d bytes, %v; want the first two", n, freed, err)
	}
	first := l.FirstSeq()
	if first >= cut || first == 1 {
		t.Fatalf("first seq %d after dropping below %d", first, cut)
	}
	got := readSeqs(t, l)
	if len(got) != int(last-first+1) || got[first-1] != nil || got[first] == nil {
		t.Fatalf("after the drop: %d events readable, want %d from seq %d", len(got), last-first+1, first)
	}
	checkRead(t, l, first, 1000, last)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// A crash after FIRST was written but before the files went: Open
	// removes them.
	l, err = Open("log", Config{FS: fs, SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	next := l.segments[1].firstSeq
	if err := l.writeFirst(next); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open("log", Config{FS: fs, SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.FirstSeq() != next || l.LastSeq() != last {
		t.Fatalf("after the interrupted cut: first %d last %d, want %d %d", l.FirstSeq(), l.LastSeq(), next, last)
	}
	names, _ := fs.List("log")
	for _, name := range names {
		if s, ok := parseSegmentName(name); ok && s < next {
			t.Fatalf("segment %s below the first seq %d is still there", name, next)
		}
	}
	w = newTestWriter(t, l, CodecNone)
	w.append(3)
	checkRead(t, l, next, 10000, last+3)
}

// TestLostFirstSegmentIsCorruption: without a recorded cut, a log whose
// first segment is missing is corrupt, not silently shorter.
func TestLostFirstSegmentIsCorruption(t *testing.T) {
	fs := vfs.NewMem()
	l, err := Open("log", Config{FS: fs, SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	newTestWriter(t, l, CodecNone).appendFrames(30, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove(fs.PathJoin("log", segmentName(1))); err != nil {
		t.Fatal(err)
	}
	if _, err := Open("log", Config{FS: fs, SegmentSize: 4 << 10}); err == nil {
		t.Fatal("a log without its first segment opened")
	}
}

// TestReset: an empty log (or one wholly below a seq) starts over there,
// for good.
func TestReset(t *testing.T) {
	fs := vfs.NewMem()
	l, err := Open("log", Config{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	newTestWriter(t, l, CodecNone).appendFrames(5, 3)
	if err := l.Reset(l.LastSeq()); err == nil {
		t.Fatal("reset below the last seq succeeded")
	}
	if err := l.Reset(1000); err != nil {
		t.Fatal(err)
	}
	if l.FirstSeq() != 1000 || l.LastSeq() != 999 || len(readSeqs(t, l)) != 0 {
		t.Fatalf("after reset: first %d last %d", l.FirstSeq(), l.LastSeq())
	}
	w := newTestWriter(t, l, CodecNone)
	if first := w.append(4); first != 1000 {
		t.Fatalf("first append after reset took seq %d", first)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open("log", Config{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.FirstSeq() != 1000 || l.LastSeq() != 1003 {
		t.Fatalf("reopened: first %d last %d", l.FirstSeq(), l.LastSeq())
	}
	checkRead(t, l, 1000, 10, 1003)
}

// TestErase: erased envelopes become tombstones in place (same seqs, no
// event bytes left in any file of the log), sealed and active segments
// alike; appends, a reopen and tail recovery go on as before.
func TestErase(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		dir := t.TempDir()
		l, err := Open(dir, Config{FS: vfs.Default, SegmentSize: 8 << 10})
		if err != nil {
			t.Fatal(err)
		}
		w := newTestWriter(t, l, codec)
		w.appendFrames(80, 6)
		last := l.LastSeq()
		var victims []uint64
		for s := uint64(3); s <= last; s += 17 {
			victims = append(victims, s)
		}
		victims = append(victims, last) // one in the active segment
		marker := func(seq uint64) []byte { return testEnvelope(seq).Raw }
		n, err := l.Erase(victims)
		if err != nil || n != len(victims) {
			t.Fatalf("erase: %d, %v; want %d", n, err, len(victims))
		}
		if again, err := l.Erase(victims); err != nil || again != 0 {
			t.Fatalf("erasing again: %d, %v", again, err)
		}
		check := func(l *Log, last uint64) {
			t.Helper()
			got := readSeqs(t, l)
			if len(got) != int(last) {
				t.Fatalf("%d events readable, want %d (seqs stay)", len(got), last)
			}
			for s := uint64(1); s <= last; s++ {
				erased := slices.Contains(victims, s)
				if erased != (len(got[s]) == 0) {
					t.Fatalf("seq %d: %q (erased %v)", s, got[s], erased)
				}
			}
		}
		check(l, last)
		w = newTestWriter(t, l, codec)
		w.append(2)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if codec == CodecNone {
			// No file of the log holds an erased event's bytes.
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			for _, f := range files {
				b, _ := os.ReadFile(f)
				for _, s := range victims {
					if bytes.Contains(b, marker(s)) {
						t.Fatalf("%s still holds seq %d", f, s)
					}
				}
			}
		}
		l, err = Open(dir, Config{FS: vfs.Default, SegmentSize: 8 << 10})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		check(l, last+2)
	})
}

// TestEraseCrash: a crash in the middle of a rewrite (the new file not yet
// renamed over the old one) leaves the old segment as it was and no
// leftover; erasing again completes it.
func TestEraseCrash(t *testing.T) {
	mem := vfs.NewCrashableMem()
	l, err := Open("log", Config{FS: mem, SegmentSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	newTestWriter(t, l, CodecNone).appendFrames(40, 5)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	last := l.LastSeq()
	// The half-done rewrite: a temporary file beside the segment.
	f, err := mem.Create(mem.PathJoin("log", segmentName(1)+tmpSuffix), writeCategory)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half a segment"))
	f.Sync()
	f.Close()
	if err := SyncDir(mem, "log"); err != nil {
		t.Fatal(err)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	l.Close()
	l, err = Open("log", Config{FS: crashed, SegmentSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.LastSeq() != last {
		t.Fatalf("after the crash: last seq %d, want %d", l.LastSeq(), last)
	}
	if ok, _ := exists(crashed, crashed.PathJoin("log", segmentName(1)+tmpSuffix)); ok {
		t.Fatal("the half-done rewrite is still there")
	}
	if n, err := l.Erase([]uint64{2}); err != nil || n != 1 {
		t.Fatalf("erase after the crash: %d, %v", n, err)
	}
	if got := readSeqs(t, l); len(got[2]) != 0 || len(got[3]) == 0 {
		t.Fatal("seq 2 not erased, or seq 3 erased")
	}

}
