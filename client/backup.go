package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
)

// ErrBadBackup is wrapped by the error of a Backup whose bytes do not
// verify: cut short, or not matching the checksums of its header and
// trailer.
var ErrBadBackup = errors.New("the backup does not verify")

// BackupInfo is what the server says of a backup before its first byte.
type BackupInfo struct {
	Size      int64  // bytes of the whole file; -1 when the server did not say
	RaftIndex uint64 // the backup is the cluster's state after this Raft entry
	FirstSeq  uint64 // its first seq: 1, or the cluster's retention cut
	LastSeq   uint64 // its last seq
}

// BackupObserver may be implemented by the writer handed to Backup: it is
// told what the server said of the backup before its first byte is
// written (eyectl sizes its progress bar so).
type BackupObserver interface {
	BackupStarted(BackupInfo)
}

// Backup downloads a backup of the cluster's whole state (GET /v1/backup,
// admin key) from the first server that answers, and writes it to w. It
// checks the file as it writes it: the header's magic and CRC, the length
// the server announced, the trailer's CRC and body length, and the SHA-256
// of the header and body the trailer holds; a backup that does not verify
// is an error wrapping ErrBadBackup (what was written to w is then not a
// backup: discard it). theeye restore checks each event frame as well. It
// returns the bytes written. A server that answers with an error or not at
// all is retried and failed over like any request; once bytes were
// written, a failure is final.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var written int64
	req := &request{method: http.MethodGet, path: "/v1/backup", idempotent: true, accept: "application/octet-stream",
		stream: func(resp *http.Response, body io.Reader) error {
			info := backupInfoOf(resp)
			if o, ok := w.(BackupObserver); ok {
				o.BackupStarted(info)
			}
			v := &backupVerifier{sum: sha256.New()}
			rd := &readErr{r: body}
			n, err := io.Copy(io.MultiWriter(w, v), rd)
			written = n
			switch {
			case err != nil && rd.err != nil:
				return fmt.Errorf("%w: the answer was cut after %d bytes: %w", ErrBadBackup, n, err)
			case err != nil:
				return fmt.Errorf("write the backup: %w", err)
			}
			if info.Size >= 0 && n != info.Size {
				return fmt.Errorf("%w: %d bytes of the %d announced", ErrBadBackup, n, info.Size)
			}
			return v.check()
		}}
	if _, err := c.do(ctx, req); err != nil {
		return written, fmt.Errorf("backup: %w", err)
	}
	return written, nil
}

// readErr keeps the error its reader returned, to tell a cut answer from
// a failed write.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

func backupInfoOf(resp *http.Response) BackupInfo {
	u := func(h string) uint64 {
		v, _ := strconv.ParseUint(resp.Header.Get(h), 10, 64)
		return v
	}
	return BackupInfo{Size: resp.ContentLength, RaftIndex: u("X-Eye-Backup-Raft-Index"),
		FirstSeq: u("X-Eye-Backup-First-Seq"), LastSeq: u("X-Eye-Backup-Last-Seq")}
}

// The envelope of raftnode's backup format (raftnode/DESIGN.md, Backups):
// a 64-byte header, the body, a 56-byte trailer.
const (
	backupHeaderSize  = 64
	backupTrailerSize = 56
)

// backupVerifier checks a backup as it is written to it: the header, and
// the trailer against the SHA-256 of everything before it. It holds back
// the last backupTrailerSize bytes, which are the trailer once the stream
// ends.
type backupVerifier struct {
	sum    hash.Hash
	header []byte // the first backupHeaderSize bytes, until checked
	held   []byte // the last bytes written, not hashed yet
	n      int64  // bytes written
	err    error  // the header's refusal
}

func (v *backupVerifier) Write(p []byte) (int, error) {
	v.n += int64(len(p))
	if v.err != nil {
		return len(p), nil
	}
	if len(v.header) < backupHeaderSize {
		k := min(len(p), backupHeaderSize-len(v.header))
		v.header = append(v.header, p[:k]...)
		if len(v.header) == backupHeaderSize {
			v.err = checkBackupHeader(v.header)
		}
	}
	v.held = append(v.held, p...)
	if extra := len(v.held) - backupTrailerSize; extra > 0 {
		v.sum.Write(v.held[:extra])
		v.held = append(v.held[:0], v.held[extra:]...)
	}
	return len(p), nil
}

// check checks the trailer once everything is written.
func (v *backupVerifier) check() error {
	if v.err != nil {
		return v.err
	}
	if v.n < backupHeaderSize+backupTrailerSize {
		return fmt.Errorf("%w: %d bytes, too few for a backup", ErrBadBackup, v.n)
	}
	t := v.held
	crc := crc32.Checksum(t[:52], crc32.MakeTable(crc32.Castagnoli))
	switch {
	case string(t[:8]) != "THEEYEND":
		return fmt.Errorf("%w: the file does not end with a trailer: it is cut or damaged", ErrBadBackup)
	case crc != binary.LittleEndian.Uint32(t[52:]):
		return fmt.Errorf("%w: the trailer's CRC does not match: the file is damaged", ErrBadBackup)
	case binary.LittleEndian.Uint64(t[8:]) != uint64(v.n-backupHeaderSize-backupTrailerSize):
		return fmt.Errorf("%w: the trailer says the body holds %d bytes, it holds %d", ErrBadBackup,
			binary.LittleEndian.Uint64(t[8:]), v.n-backupHeaderSize-backupTrailerSize)
	case !bytes.Equal(v.sum.Sum(nil), t[16:48]):
		return fmt.Errorf("%w: the SHA-256 of the file does not match its trailer's: the file is damaged", ErrBadBackup)
	}
	return nil
}

func checkBackupHeader(h []byte) error {
	switch {
	case string(h[:8]) != "THEEYEBK":
		return fmt.Errorf("%w: the answer does not start like a backup of The Eye", ErrBadBackup)
	case crc32.Checksum(h[:60], crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(h[60:]):
		return fmt.Errorf("%w: the header's CRC does not match: the file is damaged", ErrBadBackup)
	case binary.LittleEndian.Uint32(h[8:]) != 1:
		return fmt.Errorf("%w: format version %d; this client knows version 1", ErrBadBackup, binary.LittleEndian.Uint32(h[8:]))
	}
	return nil
}
