package log

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Errors. Damage found on disk wraps ErrCorrupt (ErrChecksum and
// ErrTruncated wrap it too), so errors.Is(err, ErrCorrupt) asks "is the data
// bad?" whatever the detail.
var (
	// ErrClosed is returned by every method of a closed Log.
	ErrClosed = errors.New("log: closed")
	// ErrFailed is wrapped by the sticky error of a log whose fsync
	// failed: every later write returns it until the log is reopened.
	ErrFailed = errors.New("log: fsync failed; reopen the log")
	// ErrCorrupt means bytes on disk (or handed to a decoder) are not a
	// valid encoding.
	ErrCorrupt = errors.New("log: corrupt")
	// ErrChecksum means a frame's CRC-32C does not match its contents.
	ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	// ErrTruncated means a frame or header is cut short.
	ErrTruncated = fmt.Errorf("%w: truncated", ErrCorrupt)
	// ErrUnknownCodec is returned for a codec this version does not know.
	ErrUnknownCodec = errors.New("log: unknown codec")
	// ErrEmptyFrame is returned by Append for a frame with Count 0.
	ErrEmptyFrame = errors.New("log: frame holds no events")
	// ErrTooLarge is returned for a payload over MaxPayloadSize.
	ErrTooLarge = errors.New("log: payload too large")
	// ErrRaftIndex is returned by Append when the frame's Raft index is not
	// above LastRaftIndex. The FSM should have skipped the entry.
	ErrRaftIndex = errors.New("log: raft index not increasing")
	// ErrSeqOverflow is returned when seqs would pass MaxUint64.
	ErrSeqOverflow = errors.New("log: seq overflow")
)

// Attribute keys for log records.
const (
	attrComponent = "component"
	attrDir       = "dir"
	attrSegment   = "segment"
	attrOffset    = "offset"
	attrSize      = "size"
	attrSeq       = "seq"
	attrError     = "err"
)

const (
	// DefaultSegmentSize is Config.SegmentSize when left zero.
	DefaultSegmentSize = 64 << 20

	// maxRetainedBuffer is the largest write or read buffer kept between
	// calls; a buffer grown past it by one big frame is dropped afterwards.
	maxRetainedBuffer = 8 << 20
	// maxPooledReaders bounds the read states (zstd decoder plus buffers)
	// kept for reuse between ReadFrom calls.
	maxPooledReaders = 4
)

// Config configures a Log. The zero value of each field means its default.
type Config struct {
	// SegmentSize seals the active segment before a frame would take it
	// past this many bytes; a frame larger than that gets a segment of its
	// own. Default 64 MiB.
	SegmentSize int64
	// FS is the file system. Default vfs.Default.
	FS vfs.FS
	// Logger receives the few events worth a line: tail recovery, removed
	// leftovers. nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration Open uses for zero fields.
func DefaultConfig() Config {
	return Config{SegmentSize: DefaultSegmentSize, FS: vfs.Default}
}

// Validate reports a configuration Open would refuse.
func (c Config) Validate() error {
	if c.SegmentSize < 0 {
		return fmt.Errorf("log config: segment size %d is negative", c.SegmentSize)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SegmentSize == 0 {
		c.SegmentSize = d.SegmentSize
	}
	if c.FS == nil {
		c.FS = d.FS
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Log is an append-only log of events split into segment files. One
// goroutine appends (the FSM); any number read concurrently. Sync may run
// concurrently with Append.
//
// Locks, always taken in this order: syncMu, wmu, mu.
type Log struct {
	dir         string       // immutable
	fs          vfs.FS       // immutable
	logger      *slog.Logger // immutable
	segmentSize int64        // immutable
	lock        io.Closer    // the directory lock; released by Close

	// syncMu serialises Sync and Close, so sync marks are written in order.
	syncMu sync.Mutex
	synced syncPoint // guarded by syncMu: what the SYNCED file says

	// wmu serialises writers: Append (and the seals it does), the fsync in
	// Sync, and Close.
	wmu  sync.Mutex
	werr error  // guarded by wmu: sticky write or fsync error
	wbuf []byte // guarded by wmu: the encoded frame being written

	// mu guards what readers see. The fields below, but for changed, are
	// changed only by a writer holding wmu as well, so a writer may read
	// them holding wmu alone.
	mu       sync.RWMutex
	segments []*segment // sorted by firstSeq; the last one is active
	lastSeq  uint64     // seq of the last event, 0 when empty
	lastRaft uint64     // raft index of the last frame, 0 when empty
	closed   bool
	// changed is closed by the next Append (then set to nil) or by Close.
	// Changed creates it on demand, holding mu alone, so appends nobody
	// waits for do not allocate one.
	changed chan struct{}

	// poolMu guards the free list of read states.
	poolMu     sync.Mutex
	pool       []*readState
	poolClosed bool
}

// Open opens the log in dir, creating it if needed, and recovers the tail
// of the last segment (see recover.go): a torn last frame is cut off and the
// segment as found kept as <segment>.broken. Damage anywhere else is an
// error wrapping ErrCorrupt. The directory is locked until Close.
func Open(dir string, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	fs := cfg.FS
	existed, err := exists(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	if !existed {
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open log %s: %w", dir, err)
		}
		if err := SyncDir(fs, fs.PathDir(dir)); err != nil {
			return nil, fmt.Errorf("open log %s: %w", dir, err)
		}
	}
	lock, err := fs.Lock(fs.PathJoin(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("open log %s: lock: %w", dir, err)
	}
	l := &Log{
		dir:         dir,
		fs:          fs,
		logger:      cfg.Logger.With(attrComponent, "log", attrDir, dir),
		segmentSize: cfg.SegmentSize,
		lock:        lock,
	}
	if err := l.load(); err != nil {
		_ = l.closeFiles()
		_ = lock.Close()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	l.logger.Debug("opened", "segments", len(l.segments), attrSeq, l.lastSeq, "raft_index", l.lastRaft)
	return l, nil
}

// load lists dir, indexes every segment and recovers the tail. The Log is
// not shared yet, so no locks are needed.
func (l *Log) load() error {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var firsts []uint64
	for _, name := range names {
		if strings.HasSuffix(name, tmpSuffix) {
			if err := l.fs.Remove(l.fs.PathJoin(l.dir, name)); err != nil {
				return fmt.Errorf("remove leftover %s: %w", name, err)
			}
			l.logger.Info("removed leftover temporary file", "file", name)
			continue
		}
		if seq, ok := parseSegmentName(name); ok {
			firsts = append(firsts, seq)
		}
	}
	slices.Sort(firsts)

	mark, err := l.readMark()
	if err != nil {
		return err
	}
	l.synced = mark
	first, err := l.readFirst()
	if err != nil {
		return err
	}
	// Segments below the first seq are what a retention cut left when a
	// crash interrupted it.
	for len(firsts) > 0 && firsts[0] < first {
		name := segmentName(firsts[0])
		if err := l.fs.Remove(l.fs.PathJoin(l.dir, name)); err != nil {
			return fmt.Errorf("remove dropped segment %s: %w", name, err)
		}
		l.logger.Info("removed a segment a retention cut had dropped", "segment", name)
		firsts = firsts[1:]
	}

	if len(firsts) == 0 {
		if mark.seg != 0 && mark.seg != first {
			return fmt.Errorf("sync mark names segment %s but there are no segments: %w", segmentName(mark.seg), ErrCorrupt)
		}
		seg, err := l.createSegment(first)
		if err != nil {
			return err
		}
		l.segments = []*segment{seg}
		l.lastSeq = first - 1
		return nil
	}
	if firsts[0] != first {
		return fmt.Errorf("first segment is %s, want %s: %w", segmentName(firsts[0]), segmentName(first), ErrCorrupt)
	}
	if last := firsts[len(firsts)-1]; mark.seg > last {
		return fmt.Errorf("sync mark names segment %s, past the last one %s: %w", segmentName(mark.seg), segmentName(last), ErrCorrupt)
	}
	st := scanState{next: first}
	for i, first := range firsts {
		seg := &segment{firstSeq: first, name: segmentName(first)}
		if first != st.next {
			return fmt.Errorf("segment %s: previous frames end at seq %d (missing segment?): %w", seg.name, st.next-1, ErrCorrupt)
		}
		path := l.fs.PathJoin(l.dir, seg.name)
		if i < len(firsts)-1 {
			if seg.f, err = l.fs.Open(path); err != nil {
				return fmt.Errorf("open segment %s: %w", seg.name, err)
			}
			l.segments = append(l.segments, seg)
			if err := scanSealed(seg, &st); err != nil {
				return err
			}
			continue
		}
		if seg.f, err = l.fs.OpenReadWrite(path, writeCategory); err != nil {
			return fmt.Errorf("open segment %s: %w", seg.name, err)
		}
		l.segments = append(l.segments, seg)
		var markSize int64
		if mark.seg == first {
			markSize = mark.size
		}
		if err := l.scanTail(seg, &st, markSize); err != nil {
			return err
		}
	}
	l.lastSeq = st.next - 1
	l.lastRaft = st.lastRaft
	return nil
}

// createSegment creates the segment file starting at first and fsyncs the
// directory, so a segment that exists once stays.
func (l *Log) createSegment(first uint64) (*segment, error) {
	name := segmentName(first)
	f, err := l.fs.Create(l.fs.PathJoin(l.dir, name), writeCategory)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", name, err)
	}
	if err := SyncDir(l.fs, l.dir); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("create segment %s: %w", name, err)
	}
	return &segment{firstSeq: first, name: name, f: f}, nil
}

// Append writes one frame at the end of the log; its events take seqs
// LastSeq()+1 .. LastSeq()+f.Count, and it returns the first of them.
// f.RaftIndex must be above LastRaftIndex(). Append writes but does not
// fsync (see Sync). A frame that would take the active segment past
// SegmentSize first seals it: fsync, create the next segment, fsync the
// directory.
//
// Invalid frames are rejected without effect. A failed write (a full
// disk, say) has no effect either: the frame is not published and the next
// Append writes over whatever part of it reached the file, so the caller
// may retry. A failed fsync is sticky (it wraps ErrFailed): that Append and
// every later one return it, since what the kernel holds of the file is
// then unknown; reopen the log to recover.
func (l *Log) Append(f Frame) (firstSeq uint64, err error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if l.werr != nil {
		return 0, l.werr
	}
	if f.RaftIndex <= l.lastRaft {
		return 0, fmt.Errorf("append raft index %d, last is %d: %w", f.RaftIndex, l.lastRaft, ErrRaftIndex)
	}
	first := l.lastSeq + 1
	buf, err := AppendFrame(l.wbuf[:0], first, f)
	if err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	l.wbuf = buf
	act := l.segments[len(l.segments)-1]
	if act.size > 0 && act.size+int64(len(buf)) > l.segmentSize {
		if err := l.seal(); err != nil {
			return 0, err
		}
		act = l.segments[len(l.segments)-1]
	}
	if _, err := act.f.WriteAt(buf, act.size); err != nil {
		// Not published, and the next write starts at the same offset:
		// retryable.
		return 0, fmt.Errorf("append frame at seq %d to segment %s: %w", first, act.name, err)
	}
	// Publish only now: a reader never sees a frame before all its bytes
	// are written.
	l.mu.Lock()
	act.frames = append(act.frames, frameRef{seq: first, off: act.size})
	act.size += int64(len(buf))
	l.lastSeq += uint64(f.Count)
	l.lastRaft = f.RaftIndex
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	l.mu.Unlock()
	if cap(l.wbuf) > maxRetainedBuffer {
		l.wbuf = nil
	}
	return first, nil
}

// seal fsyncs the active segment and starts the next one. wmu is held. A
// failed fsync is sticky; a failed creation of the next segment changes
// nothing and may be retried.
func (l *Log) seal() error {
	old := l.segments[len(l.segments)-1]
	if err := old.f.Sync(); err != nil {
		l.werr = fmt.Errorf("seal segment %s: %w: %w", old.name, ErrFailed, err)
		return l.werr
	}
	seg, err := l.createSegment(l.lastSeq + 1)
	if err != nil {
		return fmt.Errorf("seal segment %s: %w", old.name, err)
	}
	l.mu.Lock()
	l.segments = append(l.segments, seg)
	l.mu.Unlock()
	l.logger.Debug("sealed segment", attrSegment, old.name, attrSize, old.size)
	return nil
}

// Sync fsyncs everything appended so far and then records that point in the
// SYNCED file, which tail recovery trusts (see recover.go). Segment files
// and the directory entries of segments are already durable: sealing and
// segment creation fsync them. Sync holds off Append only for the fsync of
// the active segment.
//
// The FSM calls Sync before it lets Raft truncate its log (in
// FSMSnapshot.Persist); that is what makes Append's missing fsync safe. An
// fsync error is sticky, like a write error.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.wmu.Lock()
	p, err := l.syncActive()
	l.wmu.Unlock()
	if err != nil || p == l.synced {
		return err
	}
	if err := l.writeMark(p); err != nil {
		return err
	}
	l.synced = p
	return nil
}

// syncActive fsyncs the active segment unless the sync mark already covers
// it, and returns the point now synced. syncMu and wmu are held.
func (l *Log) syncActive() (syncPoint, error) {
	if l.closed {
		return syncPoint{}, ErrClosed
	}
	if l.werr != nil {
		return syncPoint{}, l.werr
	}
	act := l.segments[len(l.segments)-1]
	p := syncPoint{seg: act.firstSeq, size: act.size}
	if p == l.synced {
		return p, nil
	}
	if err := act.f.Sync(); err != nil {
		l.werr = fmt.Errorf("sync segment %s: %w: %w", act.name, ErrFailed, err)
		return syncPoint{}, l.werr
	}
	return p, nil
}

// LastSeq returns the seq of the last event, 0 when the log is empty.
func (l *Log) LastSeq() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastSeq
}

// LastRaftIndex returns the Raft index of the last frame, 0 when the log is
// empty. After a restart the FSM skips entries at or below it.
func (l *Log) LastRaftIndex() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastRaft
}

// Changed returns a channel that is closed by the next Append (or by
// Close); call it again for the one after. To tail without missing an
// append, take the channel before reading:
//
//	for {
//		ch := l.Changed()
//		n, err := l.ReadFrom(next, batch, fn) // next += n ...
//		if n == 0 { <-ch }
//	}
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
		if l.closed {
			close(l.changed)
		}
	}
	return l.changed
}

// Close syncs the log (unless a write already failed), closes every file
// and releases the directory lock. Readers blocked on Changed wake up and
// then get ErrClosed. Calling Close again returns nil.
func (l *Log) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return nil
	}
	var errs []error
	if l.werr == nil {
		p, err := l.syncActive()
		if err == nil && p != l.synced {
			if err = l.writeMark(p); err == nil {
				l.synced = p
			}
		}
		errs = append(errs, err)
	}
	l.mu.Lock()
	l.closed = true
	if l.changed != nil {
		close(l.changed)
	}
	errs = append(errs, l.closeFiles())
	l.mu.Unlock()

	l.poolMu.Lock()
	pool := l.pool
	l.pool, l.poolClosed = nil, true
	l.poolMu.Unlock()
	for _, rs := range pool {
		rs.dec.close()
	}
	if err := l.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("release lock: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close log %s: %w", l.dir, err)
	}
	return nil
}

// closeFiles closes every segment file. mu is held, or the Log is not
// shared yet.
func (l *Log) closeFiles() error {
	var errs []error
	for _, seg := range l.segments {
		if seg.f == nil {
			continue
		}
		if err := seg.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close segment %s: %w", seg.name, err))
		}
		seg.f = nil
	}
	return errors.Join(errs...)
}
