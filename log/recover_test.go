package log

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/theeye/theeye"
)

// lastFrames returns the frames of the log, in order.
func allFrames(t testing.TB, l *Log) []FrameInfo {
	t.Helper()
	var out []FrameInfo
	if err := l.Frames(0, func(fi FrameInfo) error { out = append(out, fi); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func editFile(t testing.TB, path string, edit func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTornTail damages the end of the last segment in the ways a crash can,
// then reopens: every frame before the damaged one is intact, LastSeq is the
// last intact event, a .broken copy exists, appends continue at the right
// seq, and a second reopen finds a clean log.
func TestTornTail(t *testing.T) {
	type tornCase struct {
		name string
		// damage edits the last segment; last is its last frame. It
		// returns whether that frame survives.
		damage func(b []byte, last FrameInfo) ([]byte, bool)
	}
	mid := func(fi FrameInfo) int { return int(fi.Offset) + HeaderSize + int(fi.Length)/2 }
	cases := []tornCase{
		{"cut mid-header", func(b []byte, fi FrameInfo) ([]byte, bool) { return b[:fi.Offset+HeaderSize/2], false }},
		{"cut after header", func(b []byte, fi FrameInfo) ([]byte, bool) { return b[:fi.Offset+HeaderSize], false }},
		{"cut mid-payload", func(b []byte, fi FrameInfo) ([]byte, bool) { return b[:mid(fi)], false }},
		{"cut in padding", func(b []byte, fi FrameInfo) ([]byte, bool) { return b[:len(b)-1], false }},
		{"flip payload byte", func(b []byte, fi FrameInfo) ([]byte, bool) { b[mid(fi)] ^= 0x20; return b, false }},
		{"flip crc", func(b []byte, fi FrameInfo) ([]byte, bool) { b[fi.Offset+5] ^= 1; return b, false }},
		{"flip raft index", func(b []byte, fi FrameInfo) ([]byte, bool) { b[fi.Offset+8] ^= 1; return b, false }},
		{"zero payload", func(b []byte, fi FrameInfo) ([]byte, bool) { clear(b[fi.Offset+HeaderSize:]); return b, false }},
		{"zero whole frame", func(b []byte, fi FrameInfo) ([]byte, bool) { clear(b[fi.Offset:]); return b, false }},
		{"append zeros", func(b []byte, _ FrameInfo) ([]byte, bool) { return append(b, make([]byte, 4096)...), true }},
		{"append short garbage", func(b []byte, _ FrameInfo) ([]byte, bool) { return append(b, "garbage"...), true }},
		{"append garbage header", func(b []byte, _ FrameInfo) ([]byte, bool) {
			return append(b, bytes.Repeat([]byte{0xa5}, 64)...), true
		}},
		{"append copy of last frame", func(b []byte, fi FrameInfo) ([]byte, bool) {
			return append(b, b[fi.Offset:]...), true // right CRC, wrong seq
		}},
	}
	forEachCodec(t, func(t *testing.T, codec Codec) {
		for _, tc := range cases {
			for _, only := range []bool{false, true} {
				name := tc.name
				if only {
					name += "/only frame in segment"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel() // mostly waiting for fsync
					testTornTail(t, codec, only, tc.damage)
				})
			}
		}
	})
}

func testTornTail(t *testing.T, codec Codec, onlyFrame bool, damage func([]byte, FrameInfo) ([]byte, bool)) {
	dir := t.TempDir()
	cfg := Config{SegmentSize: 3 << 10}
	l := mustOpen(t, dir, cfg)
	w := newTestWriter(t, l, codec)
	w.appendFrames(6, 9)
	// End with a frame that starts a segment (onlyFrame) or with one that
	// follows others in its segment.
	for i := 0; ; i++ {
		w.append(1 + i%9)
		frames := allFrames(t, l)
		last := frames[len(frames)-1]
		if (last.Offset == 0) == onlyFrame {
			break
		}
		if i > 100 {
			t.Fatal("could not shape the last segment")
		}
	}
	frames := allFrames(t, l)
	last := frames[len(frames)-1]
	mustClose(t, l)

	segPath := filepath.Join(dir, last.Segment)
	survives := false
	editFile(t, segPath, func(b []byte) []byte {
		var out []byte
		out, survives = damage(b, last)
		return out
	})
	wantLast := last.FirstSeq - 1
	wantRaft := uint64(0)
	if len(frames) > 1 {
		wantRaft = frames[len(frames)-2].RaftIndex
	}
	if survives {
		wantLast, wantRaft = last.LastSeq(), last.RaftIndex
	}

	l = mustOpen(t, dir, cfg)
	if l.LastSeq() != wantLast || l.LastRaftIndex() != wantRaft {
		t.Fatalf("after recovery LastSeq %d LastRaftIndex %d, want %d %d", l.LastSeq(), l.LastRaftIndex(), wantLast, wantRaft)
	}
	checkRead(t, l, 0, math.MaxInt, wantLast)
	if !fileExists(t, segPath+brokenSuffix) {
		t.Fatalf("no %s.broken", last.Segment)
	}
	// Appends continue right after the last intact event.
	w = newTestWriter(t, l, codec)
	w.appendFrames(3, 9)
	newLast := l.LastSeq()
	checkRead(t, l, 0, math.MaxInt, newLast)
	mustClose(t, l)

	l = mustOpen(t, dir, cfg)
	if l.LastSeq() != newLast {
		t.Fatalf("second reopen: LastSeq %d, want %d", l.LastSeq(), newLast)
	}
	checkRead(t, l, 0, math.MaxInt, newLast)
	if fileExists(t, segPath+brokenSuffix+".1") {
		t.Fatal("second reopen found damage again")
	}
}

// TestBrokenCopyKept checks that .broken holds the segment exactly as found,
// and that a later recovery of the same segment does not overwrite it.
func TestBrokenCopyKept(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Config{})
	w := newTestWriter(t, l, CodecNone)
	w.appendFrames(5, 4)
	mustClose(t, l)
	seg := filepath.Join(dir, segmentName(1))
	editFile(t, seg, func(b []byte) []byte { return append(b, "torn"...) })
	found, _ := os.ReadFile(seg)
	l = mustOpen(t, dir, Config{})
	mustClose(t, l)
	if kept, _ := os.ReadFile(seg + brokenSuffix); !bytes.Equal(kept, found) {
		t.Fatal(".broken differs from the segment as found")
	}
	editFile(t, seg, func(b []byte) []byte { return append(b, "torn again"...) })
	l = mustOpen(t, dir, Config{})
	mustClose(t, l)
	if kept, _ := os.ReadFile(seg + brokenSuffix); !bytes.Equal(kept, found) {
		t.Fatal("first .broken overwritten")
	}
	if !fileExists(t, seg+brokenSuffix+".1") {
		t.Fatal("no .broken.1 for the second recovery")
	}
}

// TestCorruptSealedSegment: damage in a sealed segment is an error at
// Open when the headers show it, and at read time (CRC) when only a payload
// is hit.
func TestCorruptSealedSegment(t *testing.T) {
	setup := func(t *testing.T, codec Codec) (string, Config, []FrameInfo) {
		dir := t.TempDir()
		cfg := Config{SegmentSize: 4 << 10}
		l := mustOpen(t, dir, cfg)
		newTestWriter(t, l, codec).appendFrames(40, 9)
		frames := allFrames(t, l)
		mustClose(t, l)
		if frames[len(frames)-1].Segment == segmentName(1) {
			t.Fatal("need more than one segment")
		}
		return dir, cfg, frames
	}
	forEachCodec(t, func(t *testing.T, codec Codec) {
		for _, tc := range []struct {
			name string
			edit func(dir string, frames []FrameInfo)
		}{
			{"flip first seq", func(dir string, f []FrameInfo) {
				editFile(t, filepath.Join(dir, f[1].Segment), func(b []byte) []byte { b[f[1].Offset+16] ^= 4; return b })
			}},
			{"flip count", func(dir string, f []FrameInfo) {
				editFile(t, filepath.Join(dir, f[1].Segment), func(b []byte) []byte { b[f[1].Offset+24] ^= 0x10; return b })
			}},
			{"flip version", func(dir string, f []FrameInfo) {
				editFile(t, filepath.Join(dir, f[0].Segment), func(b []byte) []byte { b[29] = 7; return b })
			}},
			{"truncated sealed segment", func(dir string, f []FrameInfo) {
				editFile(t, filepath.Join(dir, f[0].Segment), func(b []byte) []byte { return b[:len(b)-3] })
			}},
			{"zeros appended to sealed segment", func(dir string, f []FrameInfo) {
				editFile(t, filepath.Join(dir, f[0].Segment), func(b []byte) []byte { return append(b, make([]byte, 64)...) })
			}},
			{"missing middle segment", func(dir string, f []FrameInfo) {
				segs := segmentFiles(t, dir)
				if err := os.Remove(filepath.Join(dir, segs[1])); err != nil {
					t.Fatal(err)
				}
			}},
			{"missing first segment", func(dir string, f []FrameInfo) {
				if err := os.Remove(filepath.Join(dir, segmentName(1))); err != nil {
					t.Fatal(err)
				}
			}},
			{"empty sealed segment", func(dir string, f []FrameInfo) {
				editFile(t, filepath.Join(dir, f[0].Segment), func(b []byte) []byte { return nil })
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dir, cfg, frames := setup(t, codec)
				tc.edit(dir, frames)
				l, err := Open(dir, cfg)
				if err == nil {
					l.Close()
					t.Fatal("Open succeeded")
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				t.Log(err)
			})
		}
		t.Run("flip payload byte", func(t *testing.T) {
			dir, cfg, frames := setup(t, codec)
			hit := frames[1]
			if hit.Segment == frames[len(frames)-1].Segment {
				t.Fatal("frame 1 is not in a sealed segment")
			}
			editFile(t, filepath.Join(dir, hit.Segment), func(b []byte) []byte {
				b[hit.Offset+HeaderSize+int64(hit.Length)/2] ^= 0x01
				return b
			})
			l := mustOpen(t, dir, cfg) // headers are fine: CRCs are checked on read
			last := l.LastSeq()
			_, err := l.ReadFrom(1, math.MaxInt, func(uint64, *theeye.Envelope) error { return nil })
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("ReadFrom over the damaged frame: err = %v, want ErrChecksum", err)
			}
			checkRead(t, l, hit.LastSeq()+1, math.MaxInt, last) // the rest reads fine
			checkRead(t, l, frames[0].FirstSeq, int(frames[0].Count), last)
		})
	})
}

// TestCorruptSyncedTail: a damaged frame followed by more data inside the
// synced part of the last segment is corruption, not a torn write.
func TestCorruptSyncedTail(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Config{})
	newTestWriter(t, l, CodecS2).appendFrames(10, 5)
	frames := allFrames(t, l)
	mustClose(t, l) // syncs: the whole segment is below the sync mark
	hit := frames[4]
	editFile(t, filepath.Join(dir, hit.Segment), func(b []byte) []byte {
		b[hit.Offset+HeaderSize+int64(hit.Length)/2] ^= 0x01
		return b
	})
	if l, err := Open(dir, Config{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			l.Close()
		}
		t.Fatalf("Open: err = %v, want ErrCorrupt", err)
	}
}

// TestUnsyncedTailHole: past the sync mark, a damaged frame is torn even
// when intact frames follow it (pages written back out of order).
func TestUnsyncedTailHole(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		dir := t.TempDir()
		l := mustOpen(t, dir, Config{})
		w := newTestWriter(t, l, codec)
		w.appendFrames(5, 5)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		synced := l.LastSeq()
		w.appendFrames(5, 5)
		frames := allFrames(t, l)

		// Crash: copy the directory as the OS would have it (page cache
		// included), without Close.
		crashed := t.TempDir()
		copyDir(t, dir, crashed)
		hit := frames[6] // after the sync point, with frames after it
		editFile(t, filepath.Join(crashed, hit.Segment), func(b []byte) []byte {
			clear(b[hit.Offset : hit.Offset+hit.Size()])
			return b
		})
		l2 := mustOpen(t, crashed, Config{})
		if l2.LastSeq() != hit.FirstSeq-1 || l2.LastSeq() < synced {
			t.Fatalf("LastSeq %d, want %d (synced %d)", l2.LastSeq(), hit.FirstSeq-1, synced)
		}
		checkRead(t, l2, 0, math.MaxInt, l2.LastSeq())
	})
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenCleansUp(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Config{})
	newTestWriter(t, l, CodecNone).append(3)
	mustClose(t, l)
	for _, name := range []string{"00000000000000000001.seg.tmp", "SYNCED.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Config{})
	checkRead(t, l, 1, 10, 3)
	for _, name := range []string{"00000000000000000001.seg.tmp", "SYNCED.tmp"} {
		if fileExists(t, filepath.Join(dir, name)) {
			t.Errorf("%s not removed", name)
		}
	}
	if !fileExists(t, filepath.Join(dir, "README")) {
		t.Error("unrelated file removed")
	}
}

func TestDamagedSyncMarkIgnored(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Config{})
	newTestWriter(t, l, CodecNone).appendFrames(4, 3)
	last := l.LastSeq()
	mustClose(t, l)
	editFile(t, filepath.Join(dir, markName), func(b []byte) []byte { b[10] ^= 1; return b })
	l = mustOpen(t, dir, Config{})
	checkRead(t, l, 1, 100, last)
}

func TestSyncMarkRoundTrip(t *testing.T) {
	p := syncPoint{seg: 12345, size: 678}
	got, err := decodeMark(encodeMark(p))
	if err != nil || got != p {
		t.Fatalf("got %+v, %v", got, err)
	}
	b := encodeMark(p)
	for i := range len(b) * 8 {
		c := bytes.Clone(b)
		c[i/8] ^= 1 << (i % 8)
		if _, err := decodeMark(c); err == nil {
			t.Fatalf("bit %d flipped: accepted", i)
		}
	}
}
