package api

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"
)

// Headers of a GET /v1/backup answer: what the backup's own header says,
// readable before the body (eyectl shows them).
const (
	HeaderBackupRaftIndex = "X-Eye-Backup-Raft-Index"
	HeaderBackupFirstSeq  = "X-Eye-Backup-First-Seq"
	HeaderBackupLastSeq   = "X-Eye-Backup-Last-Seq"
)

// handleBackup streams a backup (raftnode's format: a header, the
// snapshot stream, a trailer with a SHA-256) of the cluster's state as
// this node held it at one Raft index. Any node answers: it takes a Raft
// snapshot of itself, a follower as well as the leader. The size is known
// first, so the answer has a Content-Length; each write is bounded by
// exportWriteTimeout, so a reader that stalls is dropped and the snapshot
// stream released. When the stream fails midway the answer stops short of
// its Content-Length and the client sees it cut.
func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	b, err := s.cfg.Node.Backup(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer b.Close()
	hb := b.Header
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(b.Size, 10))
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="theeye-%d.backup"`, hb.RaftIndex))
	h.Set(HeaderBackupRaftIndex, strconv.FormatUint(hb.RaftIndex, 10))
	h.Set(HeaderBackupFirstSeq, strconv.FormatUint(hb.FirstSeq, 10))
	h.Set(HeaderBackupLastSeq, strconv.FormatUint(hb.LastSeq, 10))
	start := time.Now()
	n, err := b.WriteTo(&deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: exportWriteTimeout})
	if err != nil {
		s.logger.Warn("backup stream ended early", "raft_index", hb.RaftIndex, "bytes", n, "size", b.Size, "err", err)
		return
	}
	s.logger.Info("backup sent", "raft_index", hb.RaftIndex, "first_seq", hb.FirstSeq, "last_seq", hb.LastSeq,
		"bytes", n, "duration", time.Since(start).Round(time.Millisecond))
}

// deadlineWriter bounds each write to w by timeout, from the moment it
// starts: a stream as long as it needs to be, as long as it moves.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.w.Write(p)
}
