package raftnode

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

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
// Stream: meta JSON line with "frames": true, then per frame a 25-byte
// header (first seq u64, Raft index u64, count u32, codec u8, payload
// length u32 — big-endian) and the payload; a zero first seq ends it.

const frameHeaderLen = 8 + 8 + 4 + 1 + 4

// snapshotStore wraps raft's file snapshot store to stream log/ frames.
type snapshotStore struct {
	*raft.FileSnapshotStore
	log *log.Log
}

// Open returns the snapshot's stream: as stored when it already embeds
// frames (a snapshot received from a leader), else the stored meta line
// followed by log/'s frames up to the snapshot's last seq.
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
	if sm.Frames {
		return meta, readCloser{io.MultiReader(bytes.NewReader(line), br), rc}, nil
	}
	rc.Close()
	sm.Frames = true
	head, err := json.Marshal(&sm)
	if err != nil {
		return nil, nil, fmt.Errorf("encode snapshot meta: %w", err)
	}
	head = append(head, '\n')
	size := int64(len(head)) + frameHeaderLen // the end marker
	if sm.LastSeq > 0 {
		err = s.log.Frames(1, func(fi log.FrameInfo) error {
			if fi.FirstSeq > sm.LastSeq {
				return errStop
			}
			size += frameHeaderLen + int64(fi.Length)
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

func (s *snapshotStore) writeStream(w io.Writer, head []byte, lastSeq uint64) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.Write(head); err != nil {
		return err
	}
	var hdr [frameHeaderLen]byte
	if lastSeq > 0 {
		err := s.log.ReadFrames(1, lastSeq, func(first uint64, f log.Frame) error {
			putFrameHeader(hdr[:], first, f)
			if _, err := bw.Write(hdr[:]); err != nil {
				return err
			}
			_, err := bw.Write(f.Payload)
			return err
		})
		if err != nil {
			return fmt.Errorf("stream log frames: %w", err)
		}
	}
	clear(hdr[:])
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	return bw.Flush()
}

func putFrameHeader(b []byte, first uint64, f log.Frame) {
	binary.BigEndian.PutUint64(b[0:], first)
	binary.BigEndian.PutUint64(b[8:], f.RaftIndex)
	binary.BigEndian.PutUint32(b[16:], f.Count)
	b[20] = byte(f.Codec)
	binary.BigEndian.PutUint32(b[21:], uint32(len(f.Payload)))
}

type readCloser struct {
	io.Reader
	io.Closer
}

// restoreFrames reads the frames of a snapshot stream and appends to log/
// those it lacks. Frames are whole Raft entries, so log/ either holds a
// frame or none of it.
func (n *Node) restoreFrames(r io.Reader) error {
	var hdr [frameHeaderLen]byte
	var payload []byte
	appended := 0
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("read snapshot frame header: %w", err)
		}
		first := binary.BigEndian.Uint64(hdr[0:])
		if first == 0 {
			break
		}
		f := log.Frame{
			RaftIndex: binary.BigEndian.Uint64(hdr[8:]),
			Count:     binary.BigEndian.Uint32(hdr[16:]),
			Codec:     log.Codec(hdr[20]),
		}
		size := binary.BigEndian.Uint32(hdr[21:])
		if size > log.MaxPayloadSize {
			return fmt.Errorf("snapshot frame at seq %d: payload of %d bytes: %w", first, size, log.ErrCorrupt)
		}
		if cap(payload) < int(size) {
			payload = make([]byte, size)
		}
		payload = payload[:size]
		if _, err := io.ReadFull(r, payload); err != nil {
			return fmt.Errorf("read snapshot frame at seq %d: %w", first, err)
		}
		if first <= n.log.LastSeq() {
			continue
		}
		f.Payload = payload
		got, err := n.log.Append(f)
		if err != nil {
			return fmt.Errorf("append snapshot frame at seq %d: %w", first, err)
		}
		if got != first {
			return fmt.Errorf("snapshot frame at seq %d landed at seq %d: the logs diverge", first, got)
		}
		n.appliedSeq.Store(first + uint64(f.Count) - 1)
		appended++
	}
	if appended > 0 {
		n.logger.Info("caught up from a snapshot", "frames", appended, "last_seq", n.log.LastSeq())
	}
	return nil
}
