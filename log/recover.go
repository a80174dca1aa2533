package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// Tail recovery.
//
// Append does not fsync, so after a crash the active (last) segment may end
// in anything: a short header, a frame whose length runs past the end of the
// file, a frame with a bad CRC, zeros, or (pages written back out of order)
// a hole of zeros followed by intact frames. None of it was acknowledged as
// durable: the FSM only relies on what Sync covered, and Raft re-applies the
// rest. Open therefore scans the last segment frame by frame, checking every
// CRC, and at the first bad frame decides whether it is a torn tail (cut it
// off, keep a .broken copy) or corruption (refuse to open).
//
// A bad frame at offset off is a torn tail when
//
//   - fewer than 32 bytes are left (short header), or
//   - its length field runs past the end of the file, or
//   - its length field ends it exactly at the end of the file (it is the last
//     frame), or
//   - it starts at or after the sync mark: the offset up to which the segment
//     was fsynced by Sync or Close, recorded in the SYNCED file, or
//   - every byte from off to the end of the file is zero.
//
// Anything else, a bad frame followed by more data inside the synced part
// of the segment, is corruption: cutting there would drop frames that were
// synced and may no longer be in the Raft log. The sync mark only ever makes
// recovery more lenient than the first three rules, and only over bytes that
// were never fsynced, which is always safe.

// syncPoint says that segment seg was fsynced through byte size.
type syncPoint struct {
	seg  uint64 // first seq of the segment; 0 when no mark exists
	size int64
}

// The SYNCED file: 32 bytes, little-endian.
//
//	[0:4]   CRC-32C of bytes [4:32]
//	[4:8]   version, 1
//	[8:16]  first seq of the segment
//	[16:24] bytes of that segment known to be fsynced
//	[24:32] zero
const (
	markSize    = 32
	markVersion = 1
)

func encodeMark(p syncPoint) []byte {
	b := make([]byte, markSize)
	binary.LittleEndian.PutUint32(b[4:8], markVersion)
	binary.LittleEndian.PutUint64(b[8:16], p.seg)
	binary.LittleEndian.PutUint64(b[16:24], uint64(p.size))
	binary.LittleEndian.PutUint32(b[0:4], markCRC(b))
	return b
}

func decodeMark(b []byte) (syncPoint, error) {
	if len(b) != markSize {
		return syncPoint{}, fmt.Errorf("sync mark of %d bytes: %w", len(b), ErrCorrupt)
	}
	if got, want := markCRC(b), binary.LittleEndian.Uint32(b[0:4]); got != want {
		return syncPoint{}, fmt.Errorf("sync mark: %w", ErrChecksum)
	}
	if v := binary.LittleEndian.Uint32(b[4:8]); v != markVersion {
		return syncPoint{}, fmt.Errorf("sync mark version %d: %w", v, ErrCorrupt)
	}
	p := syncPoint{
		seg:  binary.LittleEndian.Uint64(b[8:16]),
		size: int64(binary.LittleEndian.Uint64(b[16:24])),
	}
	if p.size < 0 {
		return syncPoint{}, fmt.Errorf("sync mark size %d: %w", p.size, ErrCorrupt)
	}
	return p, nil
}

func markCRC(b []byte) uint32 { return crc32c(b[4:markSize]) }

// readMark returns the sync mark, or the zero syncPoint when there is none.
// A damaged mark is ignored with a warning. It is written atomically, so
// damage means the disk failed; without it recovery treats the whole last
// segment as unsynced, which is what it was before the first Sync.
func (l *Log) readMark() (syncPoint, error) {
	path := l.fs.PathJoin(l.dir, markName)
	ok, err := exists(l.fs, path)
	if err != nil {
		return syncPoint{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if !ok {
		return syncPoint{}, nil
	}
	f, err := l.fs.Open(path)
	if err != nil {
		return syncPoint{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, markSize+1))
	if err != nil {
		return syncPoint{}, fmt.Errorf("read %s: %w", path, err)
	}
	p, err := decodeMark(b)
	if err != nil {
		l.logger.Warn("ignoring damaged sync mark", attrError, err)
		return syncPoint{}, nil
	}
	return p, nil
}

func (l *Log) writeMark(p syncPoint) error {
	if err := WriteFileAtomic(l.fs, l.dir, markName, encodeMark(p)); err != nil {
		return fmt.Errorf("write sync mark: %w", err)
	}
	return nil
}

// scanTail indexes the last segment, checking every frame's CRC, and cuts
// off a torn tail. mark is the synced size of this segment (0 if unknown).
func (l *Log) scanTail(seg *segment, st *scanState, mark int64) error {
	fi, err := seg.f.Stat()
	if err != nil {
		return fmt.Errorf("stat segment %s: %w", seg.name, err)
	}
	size := fi.Size()
	if mark > size {
		l.logger.Error("segment is shorter than its sync mark: synced frames were lost",
			attrSegment, seg.name, attrSize, size, "synced", mark)
	}
	var buf []byte
	for off := int64(0); off < size; {
		h, n, err := readTailFrame(seg, off, size, &buf)
		if err == nil {
			err = st.check(h)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return err // I/O error, not damage
			}
			reason, err2 := tornReason(seg, off, size, mark)
			if err2 != nil {
				return err2
			}
			if reason == "" {
				return corruptAt(seg, off, fmt.Errorf("damaged frame inside the synced part of the last segment: %w", err))
			}
			return l.truncateTail(seg, off, size, mark, reason, err)
		}
		seg.frames = append(seg.frames, frameRef{seq: h.FirstSeq, off: off})
		st.advance(h)
		off += int64(n)
	}
	seg.size = size
	return nil
}

// readTailFrame reads and fully decodes the frame at off. Damage is reported
// as an error wrapping ErrCorrupt; anything else is an I/O error.
func readTailFrame(seg *segment, off, size int64, buf *[]byte) (FrameHeader, int, error) {
	if size-off < HeaderSize {
		return FrameHeader{}, 0, fmt.Errorf("%d bytes left for a header: %w", size-off, ErrTruncated)
	}
	var hdr [HeaderSize]byte
	if _, err := seg.f.ReadAt(hdr[:], off); err != nil {
		return FrameHeader{}, 0, fmt.Errorf("read segment %s at %d: %w", seg.name, off, err)
	}
	h, err := ParseHeader(hdr[:])
	if err != nil {
		return h, 0, err
	}
	if h.Size() > size-off {
		return h, 0, fmt.Errorf("frame of %d bytes, %d left: %w", h.Size(), size-off, ErrTruncated)
	}
	n := int(h.Size())
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if _, err := seg.f.ReadAt(b, off); err != nil {
		return h, 0, fmt.Errorf("read segment %s at %d: %w", seg.name, off, err)
	}
	h, _, _, err = DecodeFrame(b)
	return h, n, err
}

// tornReason says why the damaged frame at off is a torn tail, or "" when it
// is not one (see the rules at the top of this file).
func tornReason(seg *segment, off, size, mark int64) (string, error) {
	if size-off < HeaderSize {
		return "short header", nil
	}
	var lenField [4]byte
	if _, err := seg.f.ReadAt(lenField[:], off); err != nil {
		return "", fmt.Errorf("read segment %s at %d: %w", seg.name, off, err)
	}
	end := off + HeaderSize + int64(padded(binary.LittleEndian.Uint32(lenField[:])))
	switch {
	case end > size:
		return "length past end of file", nil
	case end == size:
		return "bad last frame", nil
	case off >= mark:
		return "damage after the sync mark", nil
	}
	zero, err := allZero(seg, off, size)
	if err != nil {
		return "", err
	}
	if zero {
		return "zeros to end of file", nil
	}
	return "", nil
}

func allZero(seg *segment, off, size int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for off < size {
		b := buf[:min(int64(len(buf)), size-off)]
		if _, err := seg.f.ReadAt(b, off); err != nil {
			return false, fmt.Errorf("read segment %s at %d: %w", seg.name, off, err)
		}
		for _, c := range b {
			if c != 0 {
				return false, nil
			}
		}
		off += int64(len(b))
	}
	return true, nil
}

// truncateTail cuts seg at off. vfs.File has no Truncate, so the good prefix
// is copied to <segment>.tmp, fsynced and renamed over the segment, then the
// directory is fsynced; the original file is first copied whole to
// <segment>.broken. A crash at any step leaves either the old segment (and
// recovery runs again) or the new one; a stray .tmp is removed by Open.
func (l *Log) truncateTail(seg *segment, off, size, mark int64, reason string, cause error) error {
	path := l.fs.PathJoin(l.dir, seg.name)
	broken, err := l.freeBrokenName(path)
	if err != nil {
		return err
	}
	if err := copyPrefix(l.fs, broken, seg.f, size); err != nil {
		return fmt.Errorf("keep copy of torn segment %s: %w", seg.name, err)
	}
	tmp := path + tmpSuffix
	if err := copyPrefix(l.fs, tmp, seg.f, off); err != nil {
		return fmt.Errorf("truncate segment %s: %w", seg.name, err)
	}
	if err := seg.f.Close(); err != nil {
		return fmt.Errorf("close segment %s: %w", seg.name, err)
	}
	seg.f = nil
	if err := l.fs.Rename(tmp, path); err != nil {
		return fmt.Errorf("truncate segment %s: rename: %w", seg.name, err)
	}
	if err := SyncDir(l.fs, l.dir); err != nil {
		return fmt.Errorf("truncate segment %s: %w", seg.name, err)
	}
	f, err := l.fs.OpenReadWrite(path, writeCategory)
	if err != nil {
		return fmt.Errorf("open segment %s: %w", seg.name, err)
	}
	seg.f = f
	seg.size = off
	level, msg := slog.LevelWarn, "truncated torn tail"
	if off < mark {
		level, msg = slog.LevelError, "truncated damaged frames that had been synced"
	}
	l.logger.Log(context.Background(), level, msg,
		attrSegment, seg.name, attrOffset, off, "dropped_bytes", size-off,
		"reason", reason, attrError, cause, "copy", l.fs.PathBase(broken))
	// The prefix is now durable; move the mark to it so a later crash may
	// drop only what is appended after this point.
	p := syncPoint{seg: seg.firstSeq, size: off}
	if err := l.writeMark(p); err != nil {
		return err
	}
	l.synced = p
	return nil
}

// freeBrokenName returns path.broken, or path.broken.N for the smallest N
// not taken, so earlier evidence is never overwritten.
func (l *Log) freeBrokenName(path string) (string, error) {
	name := path + brokenSuffix
	for i := 1; ; i++ {
		ok, err := exists(l.fs, name)
		if err != nil {
			return "", fmt.Errorf("stat %s: %w", name, err)
		}
		if !ok {
			return name, nil
		}
		name = path + brokenSuffix + "." + strconv.Itoa(i)
	}
}
