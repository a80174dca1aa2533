package api

import (
	_ "embed"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// openapiJSON is the OpenAPI 3.1 document of API.md, served as is.
//
//go:embed openapi.json
var openapiJSON []byte

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiJSON)
}

// docsPage is the self-contained docs page served at "/": quick start,
// the API reference rendered from /openapi.json, and a live view of the
// node (from /status). It makes no request outside this node.
//
//go:embed docs/index.html
var docsPage []byte

func (s *Server) handleIndexPage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", s.docsPolicy)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(docsPage)
}

// statusJSON is GET /status: what the docs page's live view shows, with no
// key, like /metrics: aggregate numbers and the membership, no events.
type statusJSON struct {
	Node         string       `json:"node"`
	Leader       string       `json:"leader"`
	State        string       `json:"state"`
	AppliedSeq   uint64       `json:"applied_seq"`
	IndexedSeq   uint64       `json:"indexed_seq"`
	IndexLag     uint64       `json:"index_lag"`
	FailedEvents uint64       `json:"failed_events"`
	Members      []memberJSON `json:"members"`
}

type memberJSON struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	me := s.self()
	st := statusJSON{Node: me.ID, Leader: me.Leader, State: me.State, AppliedSeq: me.AppliedSeq, IndexedSeq: me.IndexedSeq, Members: []memberJSON{}}
	if me.AppliedSeq > me.IndexedSeq {
		st.IndexLag = me.AppliedSeq - me.IndexedSeq
	}
	st.FailedEvents = s.cfg.Index.Stats().Errors
	if stats, err := s.cfg.Node.Stats(); err == nil {
		for _, sv := range stats.Servers {
			st.Members = append(st.Members, memberJSON{ID: sv.ID, RaftAddr: sv.RaftAddr, HTTPAddr: sv.HTTPAddr})
		}
	}
	writeJSON(w, http.StatusOK, st)
}
