package raftnode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye/log"
)

// Snapshots hold no copy of the events. log/ is never truncated, so a
// snapshot stored on disk is only its position and the replicated state
// (snapshotMeta, one JSON line, written by Persist after fsyncing log/).
// When Raft opens a snapshot to send it to a follower that is too far
// behind, snapshotStore.Open appends the frames of log/ up to the
// snapshot's last seq, exactly as they are on disk (compressed, with their
// Raft indexes); the follower's Restore appends the frames it lacks. So a
// snapshot costs a few hundred bytes to take and streams the log only when
// a node needs it.
//
// Stream: meta JSON line with "frames": true, then log/'s frames, as
// log.AppendFrame encodes them (the 32-byte header with its CRC-32C, the
// payload, the padding), from seq 1 up to the frame that ends at the
// meta's last seq. The receiver checks every frame's CRC (log.DecodeFrame)
// and that the frames follow each other up to that seq exactly, so a
// damaged or cut stream is refused.

// snapshotStore wraps raft's file snapshot store to stream log/ frames.
type snapshotStore struct {
	*raft.FileSnapshotStore
	log *log.Log
}

// snapshotFrameFormat is the encoding of the frames of a snapshot stream:
// log.AppendFrame's, CRC included.
const snapshotFrameFormat = 2

// Open returns the snapshot's stream: as stored when it already embeds
// frames in this version's format (a snapshot received from a leader: Raft
// opens it to restore it), else the stored meta line followed by log/'s
// frames up to the snapshot's last seq.
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.FileSnapshotStore.Open(id)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(rc)
	line, err := br.ReadBytes('\n')
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("read snapshot %s: %w", id, err)
	}
	var sm snapshotMeta
	if err := json.Unmarshal(line, &sm); err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("decode snapshot %s: %w", id, err)
	}
	if sm.Frames && sm.FrameFormat == snapshotFrameFormat {
		return meta, readCloser{io.MultiReader(bytes.NewReader(line), br), rc}, nil
	}
	rc.Close()
	sm.Frames, sm.FrameFormat, sm.FirstSeq = true, snapshotFrameFormat, s.log.FirstSeq()
	head, err := json.Marshal(&sm)
	if err != nil {
		return nil, nil, fmt.Errorf("encode snapshot meta: %w", err)
	}
	head = append(head, '\n')
	size := int64(len(head))
	if sm.LastSeq > 0 {
		err = s.log.Frames(1, func(fi log.FrameInfo) error {
			if fi.FirstSeq > sm.LastSeq {
				return errStop
			}
			size += fi.Size()
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, nil, fmt.Errorf("size snapshot %s: %w", id, err)
		}
	}
	m := *meta
	m.Size = size
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(s.writeStream(pw, head, sm.LastSeq))
	}()
	return &m, pr, nil
}

var errStop = errors.New("stop")

type readCloser struct {
	io.Reader
	io.Closer
}

func (s *snapshotStore) writeStream(w io.Writer, head []byte, lastSeq uint64) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.Write(head); err != nil {
		return err
	}
	if lastSeq > 0 {
		var buf []byte
		err := s.log.ReadFrames(1, lastSeq, func(first uint64, f log.Frame) error {
			var err error
			if buf, err = log.AppendFrame(buf[:0], first, f); err != nil {
				return err
			}
			_, err = bw.Write(buf)
			return err
		})
		if err != nil {
			return fmt.Errorf("stream log frames: %w", err)
		}
	}
	return bw.Flush()
}

// restoreFrames reads the frames of a snapshot stream, from firstSeq up to
// lastSeq, and appends to log/ those it lacks. Each frame's CRC is checked
// and the frames must follow each other from firstSeq to lastSeq exactly
// (readFrames): a damaged or cut stream is an error, never a gap. Frames
// are whole Raft entries, so log/ either holds a frame or none of it. When
// the stream starts past the end of log/ (the sender's retention cut
// dropped the events between), log/ starts over at firstSeq: what it held
// is below the cut.
func (n *Node) restoreFrames(r io.Reader, firstSeq, lastSeq uint64) error {
	firstSeq = max(firstSeq, 1)
	if n.log.LastSeq()+1 < firstSeq && firstSeq <= lastSeq {
		n.logger.Info("the snapshot starts past the end of the log; starting the log over there", "log_last_seq", n.log.LastSeq(), "first_seq", firstSeq)
		if err := n.log.Reset(firstSeq); err != nil {
			return fmt.Errorf("restore snapshot: %w", err)
		}
	}
	appended := 0
	err := readFrames(r, firstSeq, lastSeq, func(h log.FrameHeader, payload []byte) error {
		if h.FirstSeq <= n.log.LastSeq() {
			return nil
		}
		if err := n.appendFrame(h, payload); err != nil {
			return err
		}
		appended++
		return nil
	})
	if err != nil {
		return err
	}
	if appended == 0 {
		return nil
	}
	// Durable before Restore returns: Raft then takes every entry up to
	// the snapshot as applied and never replays them.
	if err := n.log.Sync(); err != nil {
		return fmt.Errorf("sync the log after a snapshot: %w", err)
	}
	n.logger.Info("caught up from a snapshot", "frames", appended, "last_seq", n.log.LastSeq())
	return nil
}

// readMeta returns the meta line of stored snapshot id.
func (s *snapshotStore) readMeta(id string) (snapshotMeta, error) {
	_, rc, err := s.FileSnapshotStore.Open(id)
	if err != nil {
		return snapshotMeta{}, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	defer rc.Close()
	line, err := bufio.NewReader(rc).ReadBytes('\n')
	if err != nil {
		return snapshotMeta{}, fmt.Errorf("read snapshot %s: %w", id, err)
	}
	var sm snapshotMeta
	if err := json.Unmarshal(line, &sm); err != nil {
		return snapshotMeta{}, fmt.Errorf("decode snapshot %s: %w", id, err)
	}
	return sm, nil
}

// appendFrame appends a frame read from a snapshot stream or a backup to
// log/, where it must land at the seq it had on its sender.
func (n *Node) appendFrame(h log.FrameHeader, payload []byte) error {
	got, err := n.log.Append(log.Frame{RaftIndex: h.RaftIndex, Count: h.Count, Codec: h.Codec, Payload: payload})
	if err != nil {
		return fmt.Errorf("append snapshot frame at seq %d: %w", h.FirstSeq, err)
	}
	if got != h.FirstSeq {
		return fmt.Errorf("snapshot frame at seq %d landed at seq %d: the logs diverge", h.FirstSeq, got)
	}
	n.appliedSeq.Store(h.LastSeq())
	return nil
}

// readFrames reads frames as log.AppendFrame encodes them from r, from
// firstSeq up to lastSeq, and calls fn with each (payload is only valid
// during the call). Each frame is checked (log.DecodeFrame: the header,
// the CRC, the padding) and the frames must follow each other from
// firstSeq to lastSeq exactly. An error names the frame's seq; one that
// ends inside a frame wraps io.ErrUnexpectedEOF.
func readFrames(r io.Reader, firstSeq, lastSeq uint64, fn func(h log.FrameHeader, payload []byte) error) error {
	buf := make([]byte, log.HeaderSize, 64<<10)
	for next := firstSeq; next <= lastSeq; {
		buf = buf[:log.HeaderSize]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read snapshot frame at seq %d: %w", next, unexpectedEOF(err))
		}
		h, err := log.ParseHeader(buf)
		if err != nil {
			return fmt.Errorf("snapshot frame at seq %d: %w", next, err)
		}
		if h.FirstSeq != next || h.LastSeq() > lastSeq {
			return fmt.Errorf("snapshot frame holds seqs %d-%d where %d was next (up to %d): %w", h.FirstSeq, h.LastSeq(), next, lastSeq, log.ErrCorrupt)
		}
		if buf, err = readMore(r, buf, int(h.Size())-log.HeaderSize); err != nil {
			return fmt.Errorf("read snapshot frame at seq %d (%d bytes): %w", next, h.Size(), unexpectedEOF(err))
		}
		_, payload, _, err := log.DecodeFrame(buf)
		if err != nil {
			return fmt.Errorf("snapshot frame at seq %d: %w", next, err)
		}
		if err := fn(h, payload); err != nil {
			return err
		}
		next = h.LastSeq() + 1
	}
	return nil
}

// readMore reads n more bytes from r onto buf. It grows buf as the bytes
// arrive, never by more than it holds already (at least 64 KiB at a time),
// so a damaged length in a header costs what the stream really holds, not
// what the header claims.
func readMore(r io.Reader, buf []byte, n int) ([]byte, error) {
	for n > 0 {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n, max(len(buf), 64<<10)))
		}
		k := min(n, cap(buf)-len(buf))
		got, err := io.ReadFull(r, buf[len(buf):len(buf)+k])
		buf = buf[:len(buf)+got]
		if err != nil {
			return buf, err
		}
		n -= k
	}
	return buf, nil
}

// unexpectedEOF turns the io.EOF of a read that got nothing into
// io.ErrUnexpectedEOF: where readFrames reads, more was due.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
