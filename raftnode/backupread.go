package raftnode

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/theeye/theeye/log"
)

// Reading a backup (backup.go has the format). The reader checks every
// part as it streams: the header's CRC and fields, the meta line against
// the header, each frame (log.DecodeFrame: CRC, padding) and that the
// frames follow each other from the first seq to the last exactly, with
// Raft indexes that only grow up to the meta line's last one, that nothing
// follows the last frame, and then the trailer: its CRC, the body's
// length and the SHA-256 of the header and the body. A file is valid only
// once its last byte is read, so Restore writes into a directory it
// throws away unless ReadBackup returned nil.

// BackupInfo is what a backup holds, as the reader found it.
type BackupInfo struct {
	BackupHeader
	// LastRaftIndex is the Raft index of the last frame (log/'s last
	// Raft index at the snapshot; 0 with no event).
	LastRaftIndex uint64
	// State is the replicated state at the backup's Raft index.
	State  *State
	Frames int   // frames in the body
	Size   int64 // bytes of the whole file
}

// backupSink receives what readBackup reads; nil funcs are skipped.
type backupSink struct {
	// start is called once the meta line is checked, before any frame.
	start func(info *BackupInfo) error
	// frame is called with each checked frame (payload valid during the
	// call only).
	frame func(h log.FrameHeader, payload []byte) error
}

// VerifyBackup reads a backup from r to its end and checks every part of
// it, storing nothing. An error wrapping ErrBadBackup (a *BackupError)
// says the file is not a valid backup, which part is wrong and why; other
// errors are r's.
func VerifyBackup(r io.Reader) (BackupInfo, error) { return readBackup(r, backupSink{}) }

// readBackup reads and checks a backup from r, handing the meta line and
// each frame to sink as it goes; see VerifyBackup.
func readBackup(r io.Reader, sink backupSink) (BackupInfo, error) {
	var info BackupInfo
	hb := make([]byte, BackupHeaderSize)
	if k, err := io.ReadFull(r, hb); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			_, perr := parseBackupHeader(hb[:k])
			return info, perr
		}
		return info, fmt.Errorf("read the backup header: %w", err)
	}
	h, err := parseBackupHeader(hb)
	if err != nil {
		return info, err
	}
	info.BackupHeader = h
	sum := sha256.New()
	sum.Write(hb)
	tr := &tailReader{r: r, hold: BackupTrailerSize, buf: make([]byte, 256<<10+BackupTrailerSize)}
	body := &hashingReader{r: tr, h: sum}
	br := bufio.NewReaderSize(body, 256<<10)
	at := func() int64 { return BackupHeaderSize + body.n - int64(br.Buffered()) }
	if err := readBackupMeta(br, &info, at); err != nil {
		return info, err
	}
	if sink.start != nil {
		if err := sink.start(&info); err != nil {
			return info, err
		}
	}
	if err := readBackupFrames(br, &info, sink, at); err != nil {
		return info, err
	}
	if _, err := br.ReadByte(); err == nil {
		return info, &BackupError{Part: "body", Offset: at() - 1, Reason: fmt.Sprintf("bytes follow the frame that holds the last seq %d: the file is damaged", h.LastSeq)}
	} else if !errors.Is(err, io.EOF) {
		return info, fmt.Errorf("read the backup: %w", err)
	}
	tail, err := tr.tail()
	if err != nil {
		return info, fmt.Errorf("read the backup: %w", err)
	}
	if err := checkTrailer(tail, at(), uint64(body.n), sum.Sum(nil)); err != nil {
		return info, err
	}
	info.Size = at() + BackupTrailerSize
	return info, nil
}

// readBackupMeta reads the meta line and checks it against the header.
func readBackupMeta(br *bufio.Reader, info *BackupInfo, at func() int64) error {
	bad := func(err error, format string, args ...any) error {
		return &BackupError{Part: "body", Offset: at(), Reason: "the meta line: " + fmt.Sprintf(format, args...), Err: err}
	}
	line, err := readMetaLine(br)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return bad(err, "the file ends inside it: it is truncated")
	}
	if err != nil {
		return bad(err, "unreadable")
	}
	var sm snapshotMeta
	if err := json.Unmarshal(line, &sm); err != nil {
		return bad(err, "not the JSON of a snapshot: the file is damaged")
	}
	h := info.BackupHeader
	switch {
	case !sm.Frames || sm.FrameFormat != snapshotFrameFormat:
		return bad(nil, "frame format %d; this theeye reads %d", sm.FrameFormat, snapshotFrameFormat)
	case max(sm.FirstSeq, 1) != h.FirstSeq || sm.LastSeq != h.LastSeq:
		return bad(nil, "it says seqs %d to %d, the header %d to %d: the file is damaged", max(sm.FirstSeq, 1), sm.LastSeq, h.FirstSeq, h.LastSeq)
	case sm.State == nil:
		return bad(nil, "it holds no replicated state: the file is damaged")
	case sm.LastRaftIndex > h.RaftIndex || sm.State.Index > h.RaftIndex:
		return bad(nil, "events up to Raft index %d and state at index %d, past the snapshot's %d: the file is damaged", sm.LastRaftIndex, sm.State.Index, h.RaftIndex)
	case h.Events() == 0 && sm.LastRaftIndex != 0:
		return bad(nil, "no event, yet events up to Raft index %d: the file is damaged", sm.LastRaftIndex)
	}
	info.LastRaftIndex, info.State = sm.LastRaftIndex, sm.State
	return nil
}

// readBackupFrames reads the frames of seqs FirstSeq..LastSeq and hands
// each to sink.
func readBackupFrames(br *bufio.Reader, info *BackupInfo, sink backupSink, at func() int64) error {
	var lastIndex uint64
	errSink := errors.New("sink") // marks the sink's own errors, which are not the file's
	var sinkErr error
	err := readFrames(br, info.FirstSeq, info.LastSeq, func(h log.FrameHeader, payload []byte) error {
		if h.RaftIndex <= lastIndex || h.RaftIndex > info.LastRaftIndex {
			return fmt.Errorf("the frame at seq %d comes from Raft index %d, after %d and up to %d: %w", h.FirstSeq, h.RaftIndex, lastIndex, info.LastRaftIndex, log.ErrCorrupt)
		}
		lastIndex = h.RaftIndex
		info.Frames++
		if sink.frame != nil {
			if err := sink.frame(h, payload); err != nil {
				sinkErr = err
				return errSink
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errSink):
		return sinkErr
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &BackupError{Part: "body", Offset: at(), Err: err,
			Reason: fmt.Sprintf("the file ends inside the frames, which were due up to seq %d: it is truncated (or a frame's length is damaged)", info.LastSeq)}
	case errors.Is(err, log.ErrChecksum), errors.Is(err, log.ErrCorrupt), errors.Is(err, log.ErrTruncated):
		return &BackupError{Part: "body", Offset: at(), Reason: "a frame is damaged", Err: err}
	case err != nil:
		return fmt.Errorf("read the backup: %w", err)
	}
	if info.Events() > 0 && lastIndex != info.LastRaftIndex {
		return &BackupError{Part: "body", Offset: at(),
			Reason: fmt.Sprintf("the last frame comes from Raft index %d, the meta line says %d: the file is damaged", lastIndex, info.LastRaftIndex)}
	}
	return nil
}

// hashingReader hashes and counts what it reads.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	k, err := hr.r.Read(p)
	hr.h.Write(p[:k])
	hr.n += int64(k)
	return k, err
}

// tailReader reads r but holds back its last hold bytes: Read returns
// io.EOF where they begin, and tail returns them.
type tailReader struct {
	r          io.Reader
	hold       int
	buf        []byte // len > hold
	start, end int    // buf[start:end] is read from r, not yet returned
	eof        bool
}

func (t *tailReader) fill() error {
	for t.end-t.start <= t.hold && !t.eof {
		if t.start > 0 {
			t.end = copy(t.buf, t.buf[t.start:t.end])
			t.start = 0
		}
		k, err := t.r.Read(t.buf[t.end:])
		t.end += k
		if errors.Is(err, io.EOF) {
			t.eof = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

func (t *tailReader) Read(p []byte) (int, error) {
	if err := t.fill(); err != nil {
		return 0, err
	}
	avail := t.end - t.start - t.hold
	if avail <= 0 {
		return 0, io.EOF
	}
	k := copy(p, t.buf[t.start:t.start+avail])
	t.start += k
	return k, nil
}

// tail returns the bytes held back, once Read has returned io.EOF: at
// most hold, fewer when r held fewer.
func (t *tailReader) tail() ([]byte, error) {
	if err := t.fill(); err != nil {
		return nil, err
	}
	return t.buf[t.start:t.end], nil
}
