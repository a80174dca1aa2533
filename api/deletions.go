package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/theeye/theeye"
)

// deletionPrefix is what a deletion id starts with on the API; the number
// after it is the Raft index of the request.
const deletionPrefix = "del_"

// handleEraseSession is DELETE /v1/sessions/{session_id}: erase the
// session's events logged up to now, on every node. It stays open while
// the disk is short (erasing frees space) and answers 202 with the
// deletion; GET /v1/deletions/{id} follows it on the node asked.
func (s *Server) handleEraseSession(w http.ResponseWriter, r *http.Request, ps httprouter.Params, _ *caller) {
	sid := ps.ByName("session_id")
	if sid == "" || len(sid) > maxTypeLen {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidParam, "session_id: want 1 to %d bytes", maxTypeLen).WithDetail("parameter", "session_id"))
		return
	}
	d, err := s.cfg.Node.EraseSession(r.Context(), sid, s.cfg.Now().UTC())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": deletionPrefix + strconv.FormatUint(d.ID, 10),
		"session_id": d.SessionID, "status": "pending", "at_seq": d.AtSeq})
}

// handleDeletion is GET /v1/deletions/{id}: how far a deletion got on
// this node. done means no query of this node returns the session's
// events logged up to at_seq, and no file under its data dir holds them.
func (s *Server) handleDeletion(w http.ResponseWriter, r *http.Request, ps httprouter.Params, _ *caller) {
	raw := ps.ByName("id")
	num, ok := strings.CutPrefix(raw, deletionPrefix)
	id, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil || id == 0 {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidParam, "deletion id %q: want the id DELETE /v1/sessions/{session_id} answered (del_<n>)", raw).WithDetail("parameter", "id"))
		return
	}
	d, ok := s.cfg.Node.Deletion(id)
	if !ok {
		s.writeError(w, r, theeye.Errorf(theeye.ENotFound, "no deletion %s", raw))
		return
	}
	stage, seqs, err := s.cfg.Index.ErasureState(id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := map[string]any{"id": raw, "session_id": d.SessionID, "at_seq": d.AtSeq, "status": "pending",
		"events_deleted": len(seqs), "requested_at": d.RequestedAt}
	if stage == theeye.EraseDone {
		out["status"] = "done"
		if at, err := s.cfg.Index.ErasureDoneAt(id); err == nil && !at.IsZero() {
			out["done_at"] = at.Format(time.RFC3339Nano)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
