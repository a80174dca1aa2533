package log

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/theeye/theeye"
)

// readState is what one ReadFrom call needs: a buffer for the frame read
// from disk and a decompressor with its output buffer. ReadFrom borrows one
// from the Log's free list, so concurrent readers never share buffers and a
// steady reader allocates nothing per frame.
type readState struct {
	frame []byte
	dec   *decompressor
	apps  appCache
	env   theeye.Envelope // handed to ReadFrom's fn; here so it does not escape per call
}

func (l *Log) getReadState() (*readState, error) {
	l.poolMu.Lock()
	if n := len(l.pool); n > 0 {
		rs := l.pool[n-1]
		l.pool = l.pool[:n-1]
		l.poolMu.Unlock()
		return rs, nil
	}
	l.poolMu.Unlock()
	dec, err := newDecompressor(MaxPayloadSize)
	if err != nil {
		return nil, err
	}
	return &readState{dec: dec}, nil
}

func (l *Log) putReadState(rs *readState) {
	rs.env = theeye.Envelope{App: rs.env.App} // drop the reference to Raw
	if cap(rs.frame) > maxRetainedBuffer {
		rs.frame = nil
	}
	rs.dec.trim()
	l.poolMu.Lock()
	if l.poolClosed || len(l.pool) >= maxPooledReaders {
		l.poolMu.Unlock()
		rs.dec.close()
		return
	}
	l.pool = append(l.pool, rs)
	l.poolMu.Unlock()
}

// ReadFrom calls fn for each event with seq in [from, from+max) that exists,
// in seq order, decompressing frames as needed. env, and the Raw bytes it
// points to, are valid only during the call; copy what must outlive it.
// ReadFrom returns how many times it called fn. It stops at the first error
// fn returns and returns that error as is (the count includes that call).
//
// Every frame read is CRC-checked, and its payload must hold exactly Count
// envelopes; damage is an error wrapping ErrCorrupt. ReadFrom is safe to
// call from many goroutines while one goroutine appends: it sees a frame
// only once Append has written all of it.
func (l *Log) ReadFrom(from uint64, max int, fn func(seq uint64, env *theeye.Envelope) error) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	end := from + uint64(max) // exclusive
	if end < from {
		end = math.MaxUint64
	}
	rs, err := l.getReadState()
	if err != nil {
		return 0, err
	}
	defer l.putReadState(rs)

	env := &rs.env
	n := 0
	for seq := from; seq < end; {
		h, payload, ok, err := l.readFrame(rs, seq)
		if err != nil || !ok {
			return n, err
		}
		raw, err := rs.dec.decompress(h.Codec, payload)
		if err != nil {
			return n, fmt.Errorf("read frame at seq %d: %w", h.FirstSeq, err)
		}
		for i := range uint64(h.Count) {
			s := h.FirstSeq + i
			if s >= end {
				return n, nil
			}
			var k int
			if s < seq {
				_, k, err = envelopeBody(raw) // skip without decoding
			} else {
				k, err = decodeEnvelope(raw, env, &rs.apps)
			}
			if err != nil {
				return n, fmt.Errorf("read frame at seq %d: event %d: %w", h.FirstSeq, s, err)
			}
			raw = raw[k:]
			if s >= seq {
				n++
				if err := fn(s, env); err != nil {
					return n, err
				}
			}
		}
		if len(raw) != 0 {
			return n, fmt.Errorf("read frame at seq %d: %d bytes after the last event: %w", h.FirstSeq, len(raw), ErrCorrupt)
		}
		seq = h.LastSeq() + 1 // cannot wrap: ParseHeader keeps LastSeq below MaxUint64
	}
	return n, nil
}

// readFrame reads the frame holding seq (the first frame if seq is below the
// log) into rs.frame and decodes it. ok is false when seq is past the end.
// The read happens under mu.RLock, which only keeps Close from closing the
// file underneath; it does not block other readers.
func (l *Log) readFrame(rs *readState, seq uint64) (h FrameHeader, payload []byte, ok bool, err error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return h, nil, false, ErrClosed
	}
	seg, i, ok := l.locate(seq)
	if !ok {
		l.mu.RUnlock()
		return h, nil, false, nil
	}
	ref := seg.frames[i]
	end := seg.size
	if i+1 < len(seg.frames) {
		end = seg.frames[i+1].off
	}
	size := int(end - ref.off)
	rs.frame = slices.Grow(rs.frame[:0], size)[:size]
	_, err = seg.f.ReadAt(rs.frame, ref.off)
	l.mu.RUnlock()
	if err != nil {
		return h, nil, false, fmt.Errorf("read segment %s at %d: %w", seg.name, ref.off, err)
	}
	h, payload, n, err := DecodeFrame(rs.frame)
	if err == nil && (n != size || h.FirstSeq != ref.seq) {
		err = fmt.Errorf("frame of %d bytes at seq %d, index says %d bytes at seq %d: %w", n, h.FirstSeq, size, ref.seq, ErrCorrupt)
	}
	if err != nil {
		return h, nil, false, corruptAt(seg, ref.off, err)
	}
	return h, payload, true, nil
}

// locate finds the frame holding seq, or the log's first frame when seq is
// below it. ok is false when seq is past the last event. mu is held.
func (l *Log) locate(seq uint64) (seg *segment, i int, ok bool) {
	if seq > l.lastSeq {
		return nil, 0, false
	}
	s := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].firstSeq > seq }) - 1
	seg = l.segments[max(s, 0)]
	if len(seg.frames) == 0 {
		return nil, 0, false
	}
	i = sort.Search(len(seg.frames), func(i int) bool { return seg.frames[i].seq > seq }) - 1
	return seg, max(i, 0), true
}

// FrameInfo describes a stored frame: its header and where it is.
type FrameInfo struct {
	FrameHeader
	Segment string // segment file name
	Offset  int64  // byte offset of the header in the segment
}

// Frames calls fn with the header of each frame, in order, starting with
// the frame that holds seq from (the first frame when from is below the
// log). It reads 32 bytes per frame and checks the header, not the payload
// or its CRC. It stops at the first error fn returns and returns it.
func (l *Log) Frames(from uint64, fn func(FrameInfo) error) error {
	for seq := from; ; {
		info, ok, err := l.frameInfo(seq)
		if err != nil || !ok {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
		seq = info.LastSeq() + 1
	}
}

func (l *Log) frameInfo(seq uint64) (FrameInfo, bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return FrameInfo{}, false, ErrClosed
	}
	seg, i, ok := l.locate(seq)
	if !ok {
		return FrameInfo{}, false, nil
	}
	ref := seg.frames[i]
	var hdr [HeaderSize]byte
	if _, err := seg.f.ReadAt(hdr[:], ref.off); err != nil {
		return FrameInfo{}, false, fmt.Errorf("read segment %s at %d: %w", seg.name, ref.off, err)
	}
	h, err := ParseHeader(hdr[:])
	if err == nil && h.FirstSeq != ref.seq {
		err = fmt.Errorf("frame at seq %d, index says %d: %w", h.FirstSeq, ref.seq, ErrCorrupt)
	}
	if err != nil {
		return FrameInfo{}, false, corruptAt(seg, ref.off, err)
	}
	return FrameInfo{FrameHeader: h, Segment: seg.name, Offset: ref.off}, true, nil
}

// ReadFrames calls fn with each stored frame as it is on disk (payload
// still compressed, CRC checked), in order, starting with the frame that
// holds seq from (the first frame when from is below the log), up to the
// frame holding seq to (inclusive; 0 means the end of the log). f.Payload
// is only valid during the call. Snapshots stream the log this way, and a
// node catching up appends the frames it lacks with Append.
func (l *Log) ReadFrames(from, to uint64, fn func(firstSeq uint64, f Frame) error) error {
	rs, err := l.getReadState()
	if err != nil {
		return err
	}
	defer l.putReadState(rs)
	for seq := from; to == 0 || seq <= to; {
		h, payload, ok, err := l.readFrame(rs, seq)
		if err != nil || !ok {
			return err
		}
		if err := fn(h.FirstSeq, Frame{RaftIndex: h.RaftIndex, Count: h.Count, Codec: h.Codec, Payload: payload}); err != nil {
			return err
		}
		seq = h.LastSeq() + 1
	}
	return nil
}
