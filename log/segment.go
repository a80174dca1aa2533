package log

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// File names in a log directory.
const (
	segmentSuffix = ".seg"    // %020d.seg, named by the segment's first seq
	brokenSuffix  = ".broken" // <segment>.broken[.N]: the whole file as found before a tail truncation
	tmpSuffix     = ".tmp"    // half-done atomic writes, removed by Open
	lockName      = "LOCK"    // held while the log is open
	markName      = "SYNCED"  // the sync mark; see recover.go

	segmentDigits = 20
)

func segmentName(firstSeq uint64) string {
	return fmt.Sprintf("%0*d%s", segmentDigits, firstSeq, segmentSuffix)
}

// parseSegmentName returns the first seq a segment file name encodes.
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != segmentDigits+len(segmentSuffix) || !strings.HasSuffix(name, segmentSuffix) {
		return 0, false
	}
	seq, err := strconv.ParseUint(name[:segmentDigits], 10, 64)
	if err != nil || seq == 0 {
		return 0, false
	}
	return seq, true
}

// segment is one file of the log. Every segment but the last is sealed:
// fsynced and never written again. The last one is the active segment.
type segment struct {
	firstSeq uint64 // immutable; the file is named after it
	name     string // immutable; file name within the log directory

	// f is the handle reads (and, for the active segment, writes) go through.
	// It is set before the segment is published and closed only by Close,
	// under Log.mu.
	f vfs.File

	// frames and size are guarded by Log.mu; only the writer changes them
	// (holding Log.wmu too), so the writer may read them without Log.mu.
	//
	// frames[i] is the first seq and file offset of the i-th frame: 16 bytes
	// per frame, about 1.6 MB for 10M events in 100-event frames.
	frames []frameRef
	// size is the length of the valid frames: where the next frame goes.
	size int64
}

type frameRef struct {
	seq uint64
	off int64
}

// scanState carries the continuity checks from frame to frame and segment
// to segment while Open scans the log.
type scanState struct {
	next     uint64 // the seq the next frame must start at
	lastRaft uint64 // the raft index of the previous frame (0 before the first)
}

// check reports whether h continues the log scanned so far.
func (st *scanState) check(h FrameHeader) error {
	if h.FirstSeq != st.next {
		return fmt.Errorf("frame starts at seq %d, want %d: %w", h.FirstSeq, st.next, ErrCorrupt)
	}
	if h.RaftIndex <= st.lastRaft {
		return fmt.Errorf("frame at seq %d has raft index %d, not above %d: %w", h.FirstSeq, h.RaftIndex, st.lastRaft, ErrCorrupt)
	}
	return nil
}

func (st *scanState) advance(h FrameHeader) {
	st.next = h.FirstSeq + uint64(h.Count) // ParseHeader ruled out overflow
	st.lastRaft = h.RaftIndex
}

// scanSealed indexes a sealed segment from its headers alone: one 32-byte
// read per frame. Payload CRCs are checked when a frame is read (ReadFrom),
// not here, so Open costs O(frames), not O(bytes). A sealed segment was
// fsynced before the next one was created, so any defect in it is corruption.
func scanSealed(seg *segment, st *scanState) error {
	fi, err := seg.f.Stat()
	if err != nil {
		return fmt.Errorf("stat segment %s: %w", seg.name, err)
	}
	size := fi.Size()
	var hdr [HeaderSize]byte
	for off := int64(0); off < size; {
		if size-off < HeaderSize {
			return corruptAt(seg, off, fmt.Errorf("%d bytes left for a header: %w", size-off, ErrCorrupt))
		}
		if _, err := seg.f.ReadAt(hdr[:], off); err != nil {
			return fmt.Errorf("read segment %s at %d: %w", seg.name, off, err)
		}
		h, err := ParseHeader(hdr[:])
		if err == nil {
			err = st.check(h)
		}
		if err == nil && h.Size() > size-off {
			err = fmt.Errorf("frame of %d bytes past the end of a sealed segment: %w", h.Size(), ErrCorrupt)
		}
		if err != nil {
			return corruptAt(seg, off, err)
		}
		seg.frames = append(seg.frames, frameRef{seq: h.FirstSeq, off: off})
		st.advance(h)
		off += h.Size()
	}
	if len(seg.frames) == 0 {
		return corruptAt(seg, 0, fmt.Errorf("sealed segment is empty: %w", ErrCorrupt))
	}
	seg.size = size
	return nil
}

func corruptAt(seg *segment, off int64, err error) error {
	return fmt.Errorf("segment %s offset %d: %w", seg.name, off, err)
}
