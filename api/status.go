package api

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/theeye/theeye"
)

// maxClientID is the longest client id an event may carry (longer ones
// fail validation with wrong_type, so no status can be asked of them).
const maxClientID = 256

// eventStatusJSON is the answer of GET /v1/events/{id}/status.
type eventStatusJSON struct {
	ID      string          `json:"id"`
	App     string          `json:"app"`
	Seq     uint64          `json:"seq"`
	Status  string          `json:"status"`
	Reasons []theeye.Reason `json:"reasons"`
	// DuplicateOf is the seq of the event that owns the id, for a
	// duplicate copy asked for by its seq.
	DuplicateOf uint64 `json:"duplicate_of,omitempty"`
}

// handleEventStatus is GET /v1/events/{id}/status?app=&seq=: where the
// event an app sent with its own id stands on this node (index.EventStatus
// and index/DESIGN.md, "Event status"). An ingest key asks about its own
// app (app may be left out); a read key names the app.
func (s *Server) handleEventStatus(w http.ResponseWriter, r *http.Request, ps httprouter.Params, c *caller) {
	id := ps.ByName("id")
	if id == "" || len(id) > maxClientID {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidParam, "an event id is 1 to %d bytes, got %d", maxClientID, len(id)).WithDetail("parameter", "id"))
		return
	}
	q := r.URL.Query()
	app := q.Get("app")
	own := c.key.EventApp()
	switch {
	case app == "" && slices.Contains(c.key.Scopes, theeye.ScopeIngest):
		app = own
	case app == "":
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidParam, "app is required: ids are per app (an ingest key may leave it out for its own)").WithDetail("parameter", "app"))
		return
	case app != own && !c.key.Has(theeye.ScopeRead):
		s.writeError(w, r, theeye.Errorf(theeye.EForbidden, "key %q may ask only about the events of its own app %q", c.key.ID, own))
		return
	}
	var seq uint64
	if v := q.Get("seq"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			s.writeError(w, r, theeye.Errorf(theeye.EInvalidParam, "seq %q: want the seq of one copy of the event (a whole number from 1)", truncate(v, 40)).WithDetail("parameter", "seq"))
			return
		}
		seq = n
	}
	w.Header().Set("X-Eye-Indexed-Seq", strconv.FormatUint(s.cfg.Index.IndexedSeq(), 10))
	st, err := s.cfg.Index.EventStatus(r.Context(), app, id, seq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, eventStatusJSON{ID: st.ID, App: st.App, Seq: st.Seq, Status: st.Status,
		Reasons: st.Reasons, DuplicateOf: st.DuplicateOf})
}
