package log

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/theeye/theeye"
)

func TestEmptyLog(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Config{})
	if l.LastSeq() != 0 || l.LastRaftIndex() != 0 {
		t.Fatalf("LastSeq %d, LastRaftIndex %d", l.LastSeq(), l.LastRaftIndex())
	}
	checkRead(t, l, 0, 10, 0)
	checkRead(t, l, 1, 10, 0)
	if err := l.Frames(1, func(FrameInfo) error { return errors.New("no frames expected") }); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	if got := segmentFiles(t, dir); len(got) != 1 || got[0] != "00000000000000000001.seg" {
		t.Fatalf("segments %v", got)
	}
	l = mustOpen(t, dir, Config{})
	if l.LastSeq() != 0 {
		t.Fatalf("LastSeq %d after reopen", l.LastSeq())
	}
}

func TestOpenCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	l := mustOpen(t, dir, Config{})
	newTestWriter(t, l, CodecS2).append(2)
	mustClose(t, l)
	l = mustOpen(t, dir, Config{})
	checkRead(t, l, 1, 10, 2)
}

func TestAppendReadFrom(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		dir := t.TempDir()
		cfg := Config{SegmentSize: 4 << 10}
		l := mustOpen(t, dir, cfg)
		w := newTestWriter(t, l, codec)
		w.appendFrames(80, 13)
		last := l.LastSeq()
		if segs := segmentFiles(t, dir); len(segs) < 4 {
			t.Fatalf("only %d segments; want several", len(segs))
		}
		check := func(t *testing.T, l *Log) {
			t.Helper()
			checkRead(t, l, 0, math.MaxInt, last)
			for _, from := range []uint64{0, 1, 2, 13, last / 2, last - 1, last, last + 1, last + 100} {
				for _, limit := range []int{-1, 0, 1, 6, 14, 1000, math.MaxInt} {
					checkRead(t, l, from, limit, last)
				}
			}
		}
		check(t, l)
		// Every seq as a start, one and two events at a time.
		for from := uint64(1); from <= last; from++ {
			checkRead(t, l, from, 1, last)
			checkRead(t, l, from, 2, last)
		}
		raft := l.LastRaftIndex()
		mustClose(t, l)

		l = mustOpen(t, dir, cfg)
		if l.LastSeq() != last || l.LastRaftIndex() != raft {
			t.Fatalf("after reopen LastSeq %d LastRaftIndex %d, want %d %d", l.LastSeq(), l.LastRaftIndex(), last, raft)
		}
		check(t, l)
		w = newTestWriter(t, l, codec)
		w.appendFrames(30, 13)
		last = l.LastSeq()
		check(t, l)
		mustClose(t, l)
		l = mustOpen(t, dir, cfg)
		check(t, l)
	})
}

func TestSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentSize: 2 << 10}
	l := mustOpen(t, dir, cfg)
	w := newTestWriter(t, l, CodecNone)
	w.appendFrames(40, 5)
	var infos []FrameInfo
	if err := l.Frames(0, func(fi FrameInfo) error { infos = append(infos, fi); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 40 {
		t.Fatalf("%d frames, want 40", len(infos))
	}
	files := map[string]int64{} // segment -> bytes used
	next := uint64(1)
	for _, fi := range infos {
		if fi.FirstSeq != next {
			t.Fatalf("frame at seq %d, want %d", fi.FirstSeq, next)
		}
		next = fi.LastSeq() + 1
		if files[fi.Segment] == 0 && fi.Segment != segmentName(fi.FirstSeq) {
			t.Fatalf("segment %s starts with seq %d", fi.Segment, fi.FirstSeq)
		}
		if fi.Offset != files[fi.Segment] {
			t.Fatalf("frame at seq %d at offset %d, want %d", fi.FirstSeq, fi.Offset, files[fi.Segment])
		}
		files[fi.Segment] += fi.Size()
	}
	for name, size := range files {
		if size > cfg.SegmentSize {
			t.Errorf("segment %s holds %d bytes, over SegmentSize %d", name, size, cfg.SegmentSize)
		}
	}
	if got := segmentFiles(t, dir); len(got) != len(files) {
		t.Errorf("files %v, frames in %d segments", got, len(files))
	}
	// Frames from the middle starts at the frame holding the seq.
	mid := infos[20]
	var first FrameInfo
	if err := l.Frames(mid.FirstSeq+uint64(mid.Count)-1, func(fi FrameInfo) error { first = fi; return errStop }); !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	if first != mid {
		t.Fatalf("Frames from inside frame %+v started at %+v", mid, first)
	}
}

var errStop = errors.New("stop")

func TestFrameLargerThanSegment(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Config{SegmentSize: 1 << 10})
	w := newTestWriter(t, l, CodecNone)
	w.append(1)
	w.append(50) // ~9 KB: a segment of its own
	w.append(1)
	if got := len(segmentFiles(t, dir)); got != 3 {
		t.Fatalf("%d segments, want 3", got)
	}
	checkRead(t, l, 1, 100, 52)
}

func TestAppendRejects(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{})
	w := newTestWriter(t, l, CodecS2)
	w.append(3)
	good := w.build(4, 1)
	for _, tc := range []struct {
		name string
		f    Frame
		want error
	}{
		{"same raft index", Frame{RaftIndex: l.LastRaftIndex(), Count: 1, Payload: good.Payload, Codec: good.Codec}, ErrRaftIndex},
		{"lower raft index", Frame{RaftIndex: 0, Count: 1, Payload: good.Payload, Codec: good.Codec}, ErrRaftIndex},
		{"count 0", Frame{RaftIndex: good.RaftIndex, Payload: good.Payload, Codec: good.Codec}, ErrEmptyFrame},
		{"bad codec", Frame{RaftIndex: good.RaftIndex, Count: 1, Payload: good.Payload, Codec: 5}, ErrUnknownCodec},
	} {
		if _, err := l.Append(tc.f); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Rejections are not sticky.
	if first, err := l.Append(good); err != nil || first != 4 {
		t.Fatalf("append after rejections: %d, %v", first, err)
	}
	checkRead(t, l, 1, 10, 4)
}

// halfWriteFS is an in-memory FS whose WriteAt, while fail is set, writes
// the first half of what it is given and then fails, as a full disk can.
type halfWriteFS struct {
	vfs.FS
	fail *atomic.Bool
}

type halfWriteFile struct {
	vfs.File
	fail *atomic.Bool
}

var errHalfWrite = errors.New("injected: no space left after half the write")

func (fs halfWriteFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return halfWriteFile{f, fs.fail}, err
}

func (fs halfWriteFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return halfWriteFile{f, fs.fail}, err
}

func (f halfWriteFile) WriteAt(p []byte, off int64) (int, error) {
	if !f.fail.Load() {
		return f.File.WriteAt(p, off)
	}
	n, _ := f.File.WriteAt(p[:len(p)/2], off)
	return n, errHalfWrite
}

// TestWriteErrorIsRetryable: a write that fails half-way (a full disk)
// publishes nothing and leaves the log writable; the retry takes the same
// seqs, over the half-written bytes, and the log holds every event once,
// before and after a reopen.
func TestWriteErrorIsRetryable(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		var fail atomic.Bool
		fs := halfWriteFS{FS: vfs.NewMem(), fail: &fail}
		l, err := Open("log", Config{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		w := newTestWriter(t, l, codec)
		w.appendFrames(10, 5)
		last := l.LastSeq()

		fail.Store(true)
		f := w.build(last+1, 3)
		if _, err := l.Append(f); !errors.Is(err, errHalfWrite) || errors.Is(err, ErrFailed) {
			t.Fatalf("append: err = %v, want the write error, not a sticky failure", err)
		}
		if l.LastSeq() != last {
			t.Fatalf("LastSeq %d after a failed append, want %d", l.LastSeq(), last)
		}
		checkRead(t, l, 1, 1000, last) // reads still work
		fail.Store(false)
		first, err := l.Append(f)
		if err != nil || first != last+1 {
			t.Fatalf("retry: first seq %d, %v; want %d", first, err, last+1)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		checkRead(t, l, 1, 1000, last+3)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = Open("log", Config{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if l.LastSeq() != last+3 {
			t.Fatalf("LastSeq %d after reopen, want %d", l.LastSeq(), last+3)
		}
		newTestWriter(t, l, codec).append(2)
		checkRead(t, l, 1, 1000, last+5)
	})
}

// openSyncFailing opens a log on an in-memory FS whose fsyncs fail with
// injected while fail is set; it is closed when the test ends.
func openSyncFailing(t *testing.T, fail *atomic.Bool, injected error) *Log {
	t.Helper()
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && op.Kind == errorfs.OpFileSync {
			return injected
		}
		return nil
	}))
	l, err := Open("log", Config{FS: fs, SegmentSize: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestStickySyncError(t *testing.T) {
	var fail atomic.Bool
	injected := errors.New("injected sync error")
	l := openSyncFailing(t, &fail, injected)
	w := newTestWriter(t, l, CodecNone)
	w.append(1)
	fail.Store(true)
	if err := l.Sync(); !errors.Is(err, injected) {
		t.Fatalf("sync: err = %v", err)
	}
	fail.Store(false)
	if _, err := l.Append(w.build(2, 1)); !errors.Is(err, injected) {
		t.Fatalf("append after failed sync: err = %v, want sticky", err)
	}
}

func TestSealSyncError(t *testing.T) {
	var fail atomic.Bool
	injected := errors.New("injected sync error")
	l := openSyncFailing(t, &fail, injected)
	w := newTestWriter(t, l, CodecNone)
	w.append(4)
	fail.Store(true)
	if _, err := l.Append(w.build(5, 4)); !errors.Is(err, injected) { // needs a seal
		t.Fatalf("append that seals: err = %v", err)
	}
	fail.Store(false)
	if _, err := l.Append(w.build(5, 1)); !errors.Is(err, injected) {
		t.Fatalf("later append: err = %v, want sticky", err)
	}
}

func TestChanged(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{})
	w := newTestWriter(t, l, CodecZstd)
	ch := l.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed before any Append")
	default:
	}
	if l.Changed() != ch {
		t.Fatal("Changed returned a new channel without an Append")
	}
	w.append(2)
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed by Append")
	}
	ch2 := l.Changed()
	if ch2 == ch {
		t.Fatal("Changed returned the closed channel again")
	}
	if _, err := l.Append(Frame{RaftIndex: 0, Count: 1}); err == nil {
		t.Fatal("bad append accepted")
	}
	select {
	case <-ch2:
		t.Fatal("a rejected Append closed Changed")
	default:
	}
	mustClose(t, l)
	select {
	case <-ch2:
	default:
		t.Fatal("Close did not close Changed")
	}
}

func TestClosed(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{})
	w := newTestWriter(t, l, CodecNone)
	w.append(1)
	f := w.build(2, 1)
	mustClose(t, l)
	if _, err := l.Append(f); !errors.Is(err, ErrClosed) {
		t.Errorf("Append: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync: %v", err)
	}
	if _, err := l.ReadFrom(1, 1, func(uint64, *theeye.Envelope) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadFrom: %v", err)
	}
	if err := l.Frames(1, func(FrameInfo) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Frames: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if l.LastSeq() != 1 {
		t.Errorf("LastSeq after Close = %d", l.LastSeq())
	}
}

func TestReadFromCallbackError(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{})
	newTestWriter(t, l, CodecS2).appendFrames(5, 10)
	stop := errors.New("stop here")
	var seen []uint64
	n, err := l.ReadFrom(3, 100, func(seq uint64, _ *theeye.Envelope) error {
		seen = append(seen, seq)
		if seq == 9 {
			return stop
		}
		return nil
	})
	if err != stop || n != 7 || fmt.Sprint(seen) != "[3 4 5 6 7 8 9]" {
		t.Fatalf("n %d, err %v, seen %v", n, err, seen)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir, Config{})
	if l, err := Open(dir, Config{}); err == nil {
		l.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := Open(t.TempDir(), Config{SegmentSize: -1}); err == nil {
		t.Fatal("negative SegmentSize accepted")
	}
	if d := DefaultConfig(); d.SegmentSize != 64<<20 || d.FS == nil || d.Validate() != nil {
		t.Fatalf("DefaultConfig %+v", d)
	}
}

// TestReadFromAllocs checks that a steady reader reuses its buffers: with
// one app per frame, reading a frame allocates nothing per event.
func TestReadFromAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("-race makes sync.Pool (inside zstd) drop items")
	}
	forEachCodec(t, func(t *testing.T, codec Codec) {
		l := mustOpen(t, t.TempDir(), Config{})
		w := newTestWriter(t, l, codec)
		for range 5 {
			w.append(100)
		}
		fn := func(uint64, *theeye.Envelope) error { return nil }
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := l.ReadFrom(101, 100, fn); err != nil {
				t.Fatal(err)
			}
		})
		// None per event, none per frame.
		if allocs > 0 {
			t.Fatalf("ReadFrom of 100 events: %v allocations", allocs)
		}
	})
}

func TestReadFramesCopiesALog(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cfg := Config{SegmentSize: 4 << 10}
		src := mustOpen(t, t.TempDir(), cfg)
		newTestWriter(t, src, codec).appendFrames(40, 5)
		// A second log fed only with ReadFrames holds the same events
		// under the same seqs and Raft indexes; a partial copy can be
		// completed from where it stopped.
		dst := mustOpen(t, t.TempDir(), cfg)
		copyFrames := func(from, to uint64) {
			err := src.ReadFrames(from, to, func(first uint64, f Frame) error {
				if first <= dst.LastSeq() {
					return nil
				}
				got, err := dst.Append(f)
				if err == nil && got != first {
					err = fmt.Errorf("appended at %d, source frame at %d", got, first)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		copyFrames(1, src.LastSeq()/2)
		if dst.LastSeq() == 0 || dst.LastSeq() >= src.LastSeq() {
			t.Fatalf("partial copy reached %d of %d", dst.LastSeq(), src.LastSeq())
		}
		copyFrames(dst.LastSeq()+1, 0)
		if dst.LastSeq() != src.LastSeq() || dst.LastRaftIndex() != src.LastRaftIndex() {
			t.Fatalf("copy ends at seq %d index %d, source %d %d", dst.LastSeq(), dst.LastRaftIndex(), src.LastSeq(), src.LastRaftIndex())
		}
		checkRead(t, dst, 1, 1<<20, src.LastSeq())
	})
}
