package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/theeye/theeye"
)

// handleGetConfig is GET /v1/config: the cluster config in force, as this
// node has applied it.
func (s *Server) handleGetConfig(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	writeJSON(w, http.StatusOK, s.cfg.Node.Config())
}

// handlePutConfig is PUT /v1/config: any subset of the fields, replicated;
// the change judges the events logged after it. It answers the whole new
// config.
func (s *Server) handlePutConfig(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "read body: %v", err))
		return
	}
	var p theeye.ConfigPatch
	if err := json.Unmarshal(bytes.TrimSpace(b), &p); err != nil {
		var e *theeye.Error
		if !errors.As(err, &e) {
			e = theeye.Errorf(theeye.EInvalidRequest, "the body is not a JSON object of config fields: %v", err)
		}
		s.writeError(w, r, e)
		return
	}
	if p.Empty() {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "give at least one of max_clock_skew, max_event_age, unknown_types, retention"))
		return
	}
	// Checked here for a clear 400; the FSM checks again, the same way on
	// every node.
	if err := p.Apply(s.cfg.Node.Config()).Validate(); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.cfg.Node.SetConfig(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
