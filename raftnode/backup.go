package raftnode

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye"
)

// Backups (GET /v1/backup, theeye restore). A backup is the stream of a
// Raft snapshot this node takes for it, exactly as a follower too far
// behind receives it (snapshotStore.Open: the meta line with the
// replicated state, then log/'s frames up to the snapshot's last seq, CRC
// included), so it is what the FSM held at one Raft index. It is wrapped in
// a header and a trailer so that a file can be checked whole before
// anything is restored from it. Integers are little-endian, as in log/'s
// frames.
//
//	header, 64 bytes
//	   0   8  magic "THEEYEBK"
//	   8   4  format version: 1
//	  12   4  flags: 0
//	  16   8  Raft index of the snapshot: the state is the FSM's after it
//	  24   8  Raft term of that entry
//	  32   8  first seq of the events (1, or the source's retention cut)
//	  40   8  last seq (first seq - 1 when there is no event)
//	  48   8  when the snapshot was taken, Unix milliseconds
//	  56   4  reserved: 0
//	  60   4  CRC-32C (Castagnoli) of bytes 0-59
//	body
//	          the snapshot stream: one JSON line (snapshotMeta: frames true,
//	          frame_format 2, first_seq, last_seq, last_raft_index, state),
//	          then the frames of seqs first..last as log.AppendFrame encodes
//	          them (32-byte header with a CRC-32C, payload, zero padding)
//	trailer, 56 bytes
//	   0   8  magic "THEEYEND"
//	   8   8  length of the body in bytes
//	  16  32  SHA-256 of the header and the body
//	  48   4  reserved: 0
//	  52   4  CRC-32C of bytes 0-51
//
// The state holds what the cluster replicates: apps, keys (the SHA-256
// of each secret, never a secret), schemas, cluster config versions,
// revalidation requests, the retention cut, node addresses. The cluster
// key is not replicated, so no backup holds it. Error records and the
// index are derived from log/ and the state, so they are not in it.

// Sizes and names of the backup format.
const (
	// BackupVersion is the format version this package writes and reads.
	BackupVersion = 1
	// BackupHeaderSize and BackupTrailerSize are the fixed sizes of a
	// backup's header and trailer.
	BackupHeaderSize  = 64
	BackupTrailerSize = 56

	backupMagic  = "THEEYEBK"
	trailerMagic = "THEEYEND"
	// maxMetaLine bounds the meta line a reader accepts: the state
	// (schemas, revalidations) is kilobytes to a few megabytes.
	maxMetaLine = 64 << 20
)

// BackupHeader is what a backup's header says.
type BackupHeader struct {
	Version   uint32
	RaftIndex uint64 // the state is the FSM's after this entry
	RaftTerm  uint64 // the term of that entry
	FirstSeq  uint64 // the first seq of its events: 1, or the source's retention cut
	LastSeq   uint64 // its last seq; FirstSeq-1 when it holds no event
	TakenAt   time.Time
}

// Events returns how many events the backup holds.
func (h BackupHeader) Events() uint64 { return h.LastSeq + 1 - h.FirstSeq }

// appendBinary appends the 64-byte encoding of h.
func (h BackupHeader) appendBinary(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, backupMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, h.Version)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	for _, v := range []uint64{h.RaftIndex, h.RaftTerm, h.FirstSeq, h.LastSeq, uint64(h.TakenAt.UnixMilli())} {
		dst = binary.LittleEndian.AppendUint64(dst, v)
	}
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	return binary.LittleEndian.AppendUint32(dst, crc32c(dst[start:]))
}

// parseBackupHeader decodes and checks a backup header.
func parseBackupHeader(b []byte) (BackupHeader, error) {
	bad := func(format string, args ...any) error {
		return &BackupError{Part: "header", Reason: fmt.Sprintf(format, args...)}
	}
	if len(b) < BackupHeaderSize {
		return BackupHeader{}, bad("the file holds %d bytes, fewer than the %d of a header: it is truncated, or not a backup", len(b), BackupHeaderSize)
	}
	b = b[:BackupHeaderSize]
	if string(b[:8]) != backupMagic {
		return BackupHeader{}, bad("the file starts with %q, not %q: it is not a backup of The Eye", b[:8], backupMagic)
	}
	if got, want := crc32c(b[:60]), binary.LittleEndian.Uint32(b[60:]); got != want {
		return BackupHeader{}, bad("its CRC-32C is %08x, the header says %08x: the header (the first %d bytes) is damaged", got, want, BackupHeaderSize)
	}
	u64 := func(off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
	h := BackupHeader{Version: binary.LittleEndian.Uint32(b[8:]), RaftIndex: u64(16), RaftTerm: u64(24),
		FirstSeq: u64(32), LastSeq: u64(40), TakenAt: time.UnixMilli(int64(u64(48))).UTC()}
	switch {
	case h.Version != BackupVersion:
		return h, bad("format version %d; this theeye reads version %d (was the backup taken by a newer theeye?)", h.Version, BackupVersion)
	case binary.LittleEndian.Uint32(b[12:]) != 0 || binary.LittleEndian.Uint32(b[56:]) != 0:
		return h, bad("flags or reserved bytes are not zero")
	case h.RaftIndex == 0 || h.RaftTerm == 0:
		return h, bad("Raft index %d, term %d: a snapshot has both above 0", h.RaftIndex, h.RaftTerm)
	case h.FirstSeq == 0 || h.LastSeq+1 < h.FirstSeq:
		return h, bad("seqs %d to %d are not a range", h.FirstSeq, h.LastSeq)
	}
	return h, nil
}

// appendTrailer appends the 56-byte trailer of a body of bodyLen bytes
// whose header and body hash to sum.
func appendTrailer(dst []byte, bodyLen uint64, sum []byte) []byte {
	start := len(dst)
	dst = append(dst, trailerMagic...)
	dst = binary.LittleEndian.AppendUint64(dst, bodyLen)
	dst = append(dst, sum...)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	return binary.LittleEndian.AppendUint32(dst, crc32c(dst[start:]))
}

// checkTrailer checks the trailer b against the body read: its length
// and the SHA-256 of the header and the body. off is the trailer's offset.
func checkTrailer(b []byte, off int64, bodyLen uint64, sum []byte) error {
	bad := func(format string, args ...any) error {
		return &BackupError{Part: "trailer", Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	if len(b) < BackupTrailerSize {
		return bad("the file ends %d bytes into the %d-byte trailer: it is truncated", len(b), BackupTrailerSize)
	}
	if string(b[:8]) != trailerMagic {
		return bad("%q where the trailer's %q was due: the file is damaged", b[:8], trailerMagic)
	}
	if got, want := crc32c(b[:52]), binary.LittleEndian.Uint32(b[52:]); got != want {
		return bad("its CRC-32C is %08x, the trailer says %08x: the trailer (the last %d bytes) is damaged", got, want, BackupTrailerSize)
	}
	if binary.LittleEndian.Uint32(b[48:]) != 0 {
		return bad("reserved bytes are not zero")
	}
	if want := binary.LittleEndian.Uint64(b[8:]); want != bodyLen {
		return bad("it says the body holds %d bytes, the body read holds %d: the file is damaged", want, bodyLen)
	}
	if !bytes.Equal(b[16:48], sum) {
		return bad("the SHA-256 of the header and the body is %x, the trailer says %x: a byte changed that no frame's CRC covers (in the replicated state, most likely): the file is damaged", sum, b[16:48])
	}
	return nil
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// ErrBadBackup is wrapped by every *BackupError: the file is not a
// well-formed backup (truncated, damaged, or something else).
var ErrBadBackup = errors.New("not a valid backup")

// BackupError says why a file is not a valid backup: which part (header,
// body or trailer), about where, and why.
type BackupError struct {
	Part   string // "header", "body" or "trailer"
	Offset int64  // about where in the file, in bytes from its start
	Reason string
	Err    error // the error under it, if any (log.ErrChecksum for a damaged frame)
}

func (e *BackupError) Error() string {
	s := fmt.Sprintf("%s: the %s", ErrBadBackup, e.Part)
	if e.Part != "header" {
		s += fmt.Sprintf(" (near byte %d)", e.Offset)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *BackupError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrBadBackup}
	}
	return []error{ErrBadBackup, e.Err}
}

// Backup is a backup this node is taking. Header and Size are known before
// the first byte is written (Size is the exact length of the file: a
// Content-Length); WriteTo writes it once. Close releases the snapshot
// stream; always call it.
type Backup struct {
	Header   BackupHeader
	Size     int64
	bodySize int64
	body     io.ReadCloser
}

// Backup takes a Raft snapshot of this node (a follower's as well as the
// leader's: raft.Snapshot) and opens it as a backup: the state as of the
// snapshot's Raft index, while ingest goes on. The cost is a snapshot
// (an fsync of log/ and a few hundred bytes) and then reading log/ once
// as the backup streams. When the node has applied nothing since the
// newest snapshot it holds, that snapshot is the backup.
func (n *Node) Backup(ctx context.Context) (*Backup, error) {
	meta, rc, err := n.backupSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	b, err := openBackup(meta, rc)
	if err != nil {
		return nil, err
	}
	n.logger.Info("backup started", "raft_index", b.Header.RaftIndex, "first_seq", b.Header.FirstSeq, "last_seq", b.Header.LastSeq, "bytes", b.Size)
	return b, nil
}

// openBackup makes the snapshot stream rc, as snapshotStore.Open opened
// it, a backup. It closes rc on an error.
func openBackup(meta *raft.SnapshotMeta, rc io.ReadCloser) (*Backup, error) {
	br := bufio.NewReaderSize(rc, 256<<10)
	line, err := readMetaLine(br)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("backup: read snapshot %s: %w", meta.ID, err)
	}
	var sm snapshotMeta
	if err := json.Unmarshal(line, &sm); err != nil {
		rc.Close()
		return nil, fmt.Errorf("backup: decode snapshot %s: %w", meta.ID, err)
	}
	if !sm.Frames || sm.FrameFormat != snapshotFrameFormat {
		rc.Close()
		return nil, fmt.Errorf("backup: snapshot %s streams frame format %d, want %d", meta.ID, sm.FrameFormat, snapshotFrameFormat)
	}
	h := BackupHeader{Version: BackupVersion, RaftIndex: meta.Index, RaftTerm: meta.Term,
		FirstSeq: max(sm.FirstSeq, 1), LastSeq: sm.LastSeq, TakenAt: time.Now().UTC().Truncate(time.Millisecond)}
	return &Backup{Header: h, Size: BackupHeaderSize + meta.Size + BackupTrailerSize, bodySize: meta.Size,
		body: readCloser{io.MultiReader(bytes.NewReader(line), br), rc}}, nil
}

// backupSnapshot takes a snapshot and opens it. A snapshot refused for a
// moment (a configuration change not yet applied) is tried again, a few
// times.
func (n *Node) backupSnapshot(ctx context.Context) (*raft.SnapshotMeta, io.ReadCloser, error) {
	for attempt := 1; ; attempt++ {
		fut := n.raft.Snapshot()
		done := make(chan error, 1)
		go func() { done <- fut.Error() }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("backup: snapshot: %w", ctx.Err())
		}
		switch {
		case err == nil:
			meta, rc, err := fut.Open()
			if err != nil {
				return nil, nil, fmt.Errorf("backup: open the snapshot: %w", err)
			}
			return meta, rc, nil
		case errors.Is(err, raft.ErrNothingNewToSnapshot):
			return n.openNewestSnapshot()
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, nil, fmt.Errorf("backup: %w", ErrClosed)
		case attempt == 5:
			return nil, nil, theeye.Errorf(theeye.EUnavailable, "this node cannot take a snapshot now (%v); retry, or ask another node", err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("backup: snapshot: %w", ctx.Err())
		case <-n.closing:
			return nil, nil, fmt.Errorf("backup: %w", ErrClosed)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// openNewestSnapshot opens the newest stored snapshot: a node that has
// applied nothing since it started holds exactly that state.
func (n *Node) openNewestSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error) {
	list, err := n.snaps.List()
	if err != nil {
		return nil, nil, fmt.Errorf("backup: list snapshots: %w", err)
	}
	if len(list) == 0 {
		return nil, nil, theeye.Errorf(theeye.EUnavailable, "this node has applied nothing since it started and holds no snapshot yet; retry in a moment, or ask another node")
	}
	meta, rc, err := n.snaps.Open(list[0].ID)
	if err != nil {
		return nil, nil, fmt.Errorf("backup: open snapshot %s: %w", list[0].ID, err)
	}
	return meta, rc, nil
}

// WriteTo writes the backup to w: the header, the body as the snapshot
// streams it, the trailer. It never writes more than Size bytes; when the
// snapshot stream does not hold the bytes announced (log/ changed under
// it: a retention cut dropped segments meanwhile), it stops with an error
// having written less, so the file is refused as truncated.
func (b *Backup) WriteTo(w io.Writer) (int64, error) {
	sum := sha256.New()
	hdr := b.Header.appendBinary(nil)
	sum.Write(hdr)
	k, err := w.Write(hdr)
	written := int64(k)
	if err != nil {
		return written, fmt.Errorf("write the backup header: %w", err)
	}
	body, err := b.copyBody(w, sum)
	written += body
	if err != nil {
		return written, err
	}
	k, err = w.Write(appendTrailer(nil, uint64(body), sum.Sum(nil)))
	written += int64(k)
	if err != nil {
		return written, fmt.Errorf("write the backup trailer: %w", err)
	}
	return written, nil
}

func (b *Backup) copyBody(w io.Writer, sum hash.Hash) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, rerr := b.body.Read(buf)
		if n+int64(k) > b.bodySize {
			return n, fmt.Errorf("backup: the snapshot stream holds more than the %d bytes announced: log/ changed under it; take the backup again", b.bodySize)
		}
		if k > 0 {
			sum.Write(buf[:k])
			m, err := w.Write(buf[:k])
			n += int64(m)
			if err != nil {
				return n, fmt.Errorf("write the backup: %w", err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return n, fmt.Errorf("backup: read the snapshot stream: %w", rerr)
		}
	}
	if n != b.bodySize {
		return n, fmt.Errorf("backup: the snapshot stream held %d bytes, %d were announced: log/ changed under it (a retention cut); take the backup again", n, b.bodySize)
	}
	return n, nil
}

// Close releases the snapshot stream.
func (b *Backup) Close() error { return b.body.Close() }

// readMetaLine reads a snapshot's meta line, newline included, of at most
// maxMetaLine bytes.
func readMetaLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxMetaLine {
			return nil, fmt.Errorf("no end of line in the first %d bytes", maxMetaLine)
		}
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, unexpectedEOF(err)
		}
	}
}
