package log

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/theeye/theeye"
)

// Removing events from the log. Seqs never move: an event leaves by
// retention (whole segments below a seq are deleted) or by erasure (its
// envelope is rewritten in place into a tombstone, an envelope whose Raw
// is empty, so the seqs after it stay as they are).
//
// The log's first seq is recorded in the FIRST file (written atomically
// before segments are deleted), so that Open tells a retention cut from a
// lost segment: segments below FIRST are leftovers of a cut a crash
// interrupted and are removed; a first segment above FIRST is corruption.

// firstName is the file that holds the log's first seq once it is above 1.
const firstName = "FIRST"

// FirstSeq returns the seq of the first event the log may hold: 1, or the
// seq a retention cut (DropBefore) or a Reset moved it to. Events below it
// are gone; LastSeq may be below it when the log holds none yet.
func (l *Log) FirstSeq() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.segments[0].firstSeq
}

// Dir returns the directory of the log.
func (l *Log) Dir() string { return l.dir }

// FrameOf returns the header of the frame that holds seq; found is false
// when the log does not hold seq.
func (l *Log) FrameOf(seq uint64) (info FrameInfo, found bool, err error) {
	info, ok, err := l.frameInfo(seq)
	if err != nil || !ok || seq < info.FirstSeq || seq > info.LastSeq() {
		return FrameInfo{}, false, err
	}
	return info, true, nil
}

// readFirst reads the FIRST file: 1 when there is none.
func (l *Log) readFirst() (uint64, error) {
	path := l.fs.PathJoin(l.dir, firstName)
	ok, err := exists(l.fs, path)
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", firstName, err)
	}
	if !ok {
		return 1, nil
	}
	f, err := l.fs.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", firstName, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", firstName, err)
	}
	s, ok := strings.CutPrefix(string(b), "first ")
	s, ok2 := strings.CutSuffix(s, "\n")
	n, err := strconv.ParseUint(s, 10, 64)
	if !ok || !ok2 || err != nil || n == 0 {
		return 0, fmt.Errorf("%s holds %q: %w", firstName, b, ErrCorrupt)
	}
	return n, nil
}

func (l *Log) writeFirst(seq uint64) error {
	return WriteFileAtomic(l.fs, l.dir, firstName, []byte("first "+strconv.FormatUint(seq, 10)+"\n"))
}

// DropBefore deletes the segments that hold only events below seq (never
// the active segment), and returns how many it deleted and their bytes.
// The log's first seq becomes the first seq of the first segment kept.
// Retention calls it once the index no longer needs the events.
func (l *Log) DropBefore(seq uint64) (segments int, bytes int64, err error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return 0, 0, ErrClosed
	}
	keep := 0 // index of the first segment kept
	for keep < len(l.segments)-1 && l.segments[keep+1].firstSeq <= seq {
		keep++
	}
	if keep == 0 {
		return 0, 0, nil
	}
	if err := l.writeFirst(l.segments[keep].firstSeq); err != nil {
		return 0, 0, fmt.Errorf("drop before seq %d: %w", seq, err)
	}
	l.mu.Lock()
	gone := l.segments[:keep]
	l.segments = slices.Clone(l.segments[keep:])
	l.mu.Unlock()
	for _, seg := range gone {
		bytes += seg.size
		_ = seg.f.Close()
		if err := l.fs.Remove(l.fs.PathJoin(l.dir, seg.name)); err != nil {
			return segments, bytes, fmt.Errorf("drop segment %s: %w", seg.name, err)
		}
		segments++
	}
	if err := SyncDir(l.fs, l.dir); err != nil {
		return segments, bytes, fmt.Errorf("drop before seq %d: %w", seq, err)
	}
	l.logger.Info("dropped expired segments", "segments", segments, "bytes", bytes, "first_seq", l.segments[0].firstSeq)
	return segments, bytes, nil
}

// Reset empties a log that holds nothing at or above next and makes its
// next event take seq next: a node catching up from a snapshot that
// starts above its log (the cluster dropped what it held) starts over
// there. It refuses when the log holds next or later.
func (l *Log) Reset(next uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.lastSeq >= next {
		return fmt.Errorf("reset the log to seq %d: it holds events up to %d", next, l.lastSeq)
	}
	if err := l.writeFirst(next); err != nil {
		return fmt.Errorf("reset the log to seq %d: %w", next, err)
	}
	l.mu.Lock()
	old := l.segments
	l.segments = nil
	l.mu.Unlock()
	for _, seg := range old {
		_ = seg.f.Close()
		if err := l.fs.Remove(l.fs.PathJoin(l.dir, seg.name)); err != nil {
			return fmt.Errorf("reset the log: remove segment %s: %w", seg.name, err)
		}
	}
	seg, err := l.createSegment(next)
	if err != nil {
		return fmt.Errorf("reset the log: %w", err)
	}
	p := syncPoint{seg: next, size: 0}
	if err := l.writeMark(p); err != nil {
		return fmt.Errorf("reset the log: %w", err)
	}
	l.synced = p
	l.mu.Lock()
	l.segments = []*segment{seg}
	l.lastSeq, l.lastRaft = next-1, 0
	l.mu.Unlock()
	l.logger.Info("reset", "first_seq", next)
	return nil
}

// Erase rewrites, in place, every envelope of seqs (sorted, ascending)
// into a tombstone: the same seq, received_at, app and id, no event bytes.
// Each segment that holds one is written anew (a temporary file, fsynced,
// renamed over it), so no byte of the erased events stays in log/; frames
// keep their Raft indexes and seqs. Erasing an event again is a no-op. It
// returns how many events were erased now. The active segment's appends
// wait while it is rewritten.
func (l *Log) Erase(seqs []uint64) (int, error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	l.mu.RLock()
	segs := slices.Clone(l.segments)
	l.mu.RUnlock()
	comp, err := NewCompressor()
	if err != nil {
		return 0, err
	}
	defer comp.Close()
	dec, err := newDecompressor(MaxPayloadSize)
	if err != nil {
		return 0, err
	}
	defer dec.close()
	erased := 0
	for i, seg := range segs {
		end := uint64(1<<64 - 1)
		if i+1 < len(segs) {
			end = segs[i+1].firstSeq
		}
		lo := sort.Search(len(seqs), func(k int) bool { return seqs[k] >= seg.firstSeq })
		hi := sort.Search(len(seqs), func(k int) bool { return seqs[k] >= end })
		if lo == hi {
			continue
		}
		n, err := l.eraseIn(seg, i == len(segs)-1, seqs[lo:hi], comp, dec)
		erased += n
		if err != nil {
			return erased, err
		}
	}
	return erased, nil
}

// eraseIn rewrites seg with the envelopes of seqs tombstoned.
func (l *Log) eraseIn(seg *segment, active bool, seqs []uint64, comp *Compressor, dec *decompressor) (int, error) {
	if active {
		// Appends (and the sync mark) wait: the active segment is the
		// one they write.
		l.syncMu.Lock()
		defer l.syncMu.Unlock()
		l.wmu.Lock()
		defer l.wmu.Unlock()
	}
	l.mu.RLock()
	closed := l.closed
	current := slices.Contains(l.segments, seg)
	size := seg.size
	frames := slices.Clone(seg.frames)
	l.mu.RUnlock()
	if closed {
		return 0, ErrClosed
	}
	if !current || size == 0 {
		return 0, nil // dropped or reset meanwhile
	}
	old := make([]byte, size)
	if _, err := seg.f.ReadAt(old, 0); err != nil {
		return 0, fmt.Errorf("erase: read segment %s: %w", seg.name, err)
	}
	out := make([]byte, 0, size)
	var newFrames []frameRef
	erased := 0
	for i, ref := range frames {
		end := size
		if i+1 < len(frames) {
			end = frames[i+1].off
		}
		h, payload, _, err := DecodeFrame(old[ref.off:end])
		if err != nil {
			return 0, corruptAt(seg, ref.off, err)
		}
		newFrames = append(newFrames, frameRef{seq: h.FirstSeq, off: int64(len(out))})
		k := sort.Search(len(seqs), func(k int) bool { return seqs[k] >= h.FirstSeq })
		if k == len(seqs) || seqs[k] > h.LastSeq() {
			out = append(out, old[ref.off:end]...) // untouched
			continue
		}
		f, n, err := eraseFrame(h, payload, seqs, comp, dec)
		if err != nil {
			return 0, corruptAt(seg, ref.off, err)
		}
		erased += n
		if out, err = AppendFrame(out, h.FirstSeq, f); err != nil {
			return 0, fmt.Errorf("erase: %w", err)
		}
	}
	if erased == 0 {
		return 0, nil
	}
	if err := l.replaceSegment(seg, active, out, newFrames); err != nil {
		return 0, err
	}
	return erased, nil
}

// eraseFrame returns the frame h with the envelopes of seqs tombstoned,
// and how many it tombstoned (those already tombstones do not count).
func eraseFrame(h FrameHeader, payload []byte, seqs []uint64, comp *Compressor, dec *decompressor) (Frame, int, error) {
	raw, err := dec.decompress(h.Codec, payload)
	if err != nil {
		return Frame{}, 0, err
	}
	var body []byte
	n := 0
	for i := range uint64(h.Count) {
		var env theeye.Envelope
		k, err := decodeEnvelope(raw, &env, nil)
		if err != nil {
			return Frame{}, 0, err
		}
		raw = raw[k:]
		if _, found := slices.BinarySearch(seqs, h.FirstSeq+i); found && len(env.Raw) > 0 {
			env.Raw = nil
			n++
		}
		body = AppendEnvelope(body, &env)
	}
	compressed, err := comp.Compress(h.Codec, nil, body)
	if err != nil {
		return Frame{}, 0, err
	}
	return Frame{RaftIndex: h.RaftIndex, Count: h.Count, Codec: h.Codec, Payload: compressed}, n, nil
}

// replaceSegment makes b, whose frames are frames, seg's contents: a
// temporary file, fsynced, renamed over seg's file, the directory fsynced,
// then the handle readers use swapped. For the active segment the caller
// holds syncMu and wmu, and the sync mark moves to the new size.
func (l *Log) replaceSegment(seg *segment, active bool, b []byte, frames []frameRef) error {
	path := l.fs.PathJoin(l.dir, seg.name)
	if err := WriteFileAtomic(l.fs, l.dir, seg.name, b); err != nil {
		return fmt.Errorf("erase: %w", err)
	}
	var (
		nf  vfs.File
		err error
	)
	if active {
		nf, err = l.fs.OpenReadWrite(path, writeCategory)
	} else {
		nf, err = l.fs.Open(path)
	}
	if err != nil {
		// The file on disk is the new one; this process cannot read it.
		l.werr = fmt.Errorf("erase: reopen %s: %w: %w", seg.name, ErrFailed, err)
		return l.werr
	}
	l.mu.Lock()
	oldF := seg.f
	seg.f = nf
	seg.frames, seg.size = frames, int64(len(b))
	l.mu.Unlock()
	_ = oldF.Close()
	if active {
		p := syncPoint{seg: seg.firstSeq, size: int64(len(b))}
		if err := l.writeMark(p); err != nil {
			return fmt.Errorf("erase: %w", err)
		}
		l.synced = p
	}
	return nil
}
