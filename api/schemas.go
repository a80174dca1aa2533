package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/index"
	"github.com/theeye/theeye/verdict"
)

// maxTypeLen bounds an event type's category and name in a schema.
const maxTypeLen = 256

// revalidateWait is how long POST /v1/errors/revalidate waits for this
// node's indexer to run the request before answering 202.
const revalidateWait = 30 * time.Second

func checkTypePart(field, v string) error {
	if v == "" || len(v) > maxTypeLen || !utf8.ValidString(v) {
		return theeye.Errorf(theeye.EInvalidRequest, "%s: want 1 to %d bytes of UTF-8 text", field, maxTypeLen).WithDetail("field", field)
	}
	return nil
}

// handlePutSchema is POST /v1/schemas: compile here (a 400 with the
// compiler's message), then replicate; the FSM compiles again and numbers
// the version.
func (s *Server) handlePutSchema(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	var req struct {
		Category string          `json:"category"`
		Name     string          `json:"name"`
		Schema   json.RawMessage `json:"schema"`
		Version  int             `json:"version"` // assigned by the server; accepted only as 0
	}
	if err := decodeBody(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, f := range [...]struct{ name, v string }{{"category", req.Category}, {"name", req.Name}} {
		if err := checkTypePart(f.name, f.v); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if req.Version != 0 {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "version is assigned by the server; leave it out").WithDetail("field", "version"))
		return
	}
	if len(req.Schema) == 0 {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "schema is missing").WithDetail("field", "schema"))
		return
	}
	if _, err := verdict.CompileSchema(req.Schema); err != nil {
		s.writeError(w, r, err)
		return
	}
	compact, err := compactJSON(req.Schema)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := s.cfg.Node.PutSchema(r.Context(), theeye.Schema{Category: req.Category, Name: req.Name,
		Schema: compact, CreatedAt: s.cfg.Now().UTC()})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func compactJSON(b []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, theeye.Errorf(theeye.EInvalidRequest, "schema is not JSON: %v", err)
	}
	return buf.Bytes(), nil
}

// handleListSchemas is GET /v1/schemas: the latest version of each
// schema, or with category and name every version of that one.
func (s *Server) handleListSchemas(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	q := r.URL.Query()
	category, name := q.Get("category"), q.Get("name")
	var out []theeye.Schema
	switch {
	case category == "" && name == "":
		out = s.cfg.Node.Schemas()
	case category != "" && name != "":
		out = slices.Clone(s.cfg.Node.SchemaVersions(category, name))
	default:
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidParam, "give both category and name, or neither").WithDetail("parameter", "name"))
		return
	}
	if out == nil {
		out = []theeye.Schema{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"schemas": out})
}

// handleErrorsSummary is GET /v1/errors/summary?from&to: failures counted
// by reason and by event type.
func (s *Server) handleErrorsSummary(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	p, err := parseQuery(r.URL.Query(), r.Header.Get("Accept"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.waitIndexed(r.Context(), p); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("X-Eye-Indexed-Seq", strconv.FormatUint(s.cfg.Index.IndexedSeq(), 10))
	sum, err := s.cfg.Index.ErrorsSummary(r.Context(), p.from, p.to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := map[string]any{"total": sum.Total, "by_reason": sum.ByReason, "by_type": sum.ByType}
	if !p.from.IsZero() {
		out["from"] = p.from
	}
	if !p.to.IsZero() {
		out["to"] = p.to
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRevalidate is POST /v1/errors/revalidate: the request goes
// through Raft, every node's indexer runs it at the same position of the
// log, and this node waits (bounded) for its own to report.
func (s *Server) handleRevalidate(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	var req struct {
		From     string `json:"from"`
		To       string `json:"to"`
		Reason   string `json:"reason"`
		Category string `json:"category"`
		Name     string `json:"name"`
	}
	if err := decodeBody(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	rv := theeye.Revalidation{Reason: req.Reason, Category: req.Category, Name: req.Name, RequestedAt: s.cfg.Now().UTC()}
	var err error
	if req.From != "" {
		if rv.From, err = theeye.ParseTimestamp(req.From); err != nil {
			s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "from: %v", err).WithDetail("field", "from"))
			return
		}
	}
	if req.To != "" {
		if rv.To, err = theeye.ParseTimestamp(req.To); err != nil {
			s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "to: %v", err).WithDetail("field", "to"))
			return
		}
	}
	if !rv.From.IsZero() && !rv.To.IsZero() && !rv.To.After(rv.From) {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "to must be after from").WithDetail("field", "to"))
		return
	}
	if rv.Reason != "" && !slices.Contains(index.ReasonCodes(), rv.Reason) {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "reason %q: want one of %v", rv.Reason, index.ReasonCodes()).WithDetail("field", "reason"))
		return
	}
	if rv.Name != "" && rv.Category == "" {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "name needs category: event types are category + name").WithDetail("field", "name"))
		return
	}
	rec, err := s.cfg.Node.Revalidate(r.Context(), rv)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), revalidateWait)
	defer cancel()
	res, err := s.cfg.Index.WaitRevalidation(ctx, rec.ID)
	status := http.StatusOK
	if err != nil {
		if ctx.Err() == nil {
			s.writeError(w, r, err)
			return
		}
		// Still running (or not started) here: say how far it got; GET
		// /v1/errors/revalidate/{id} follows it.
		if res, err = s.cfg.Index.Revalidation(rec.ID); err != nil {
			s.writeError(w, r, err)
			return
		}
		status = http.StatusAccepted
	}
	writeJSON(w, status, revalidationJSON(rec.AtSeq, res))
}

func revalidationJSON(atSeq uint64, res index.RevalidationResult) map[string]any {
	return map[string]any{"id": res.ID, "at_seq": atSeq, "status": res.Status,
		"checked": res.Checked, "accepted": res.Accepted, "failing": res.Failing}
}

// handleRevalidation is GET /v1/errors/revalidate/{id}: how far this node
// got with a revalidation request (pending, running with its counts so
// far, or done).
func (s *Server) handleRevalidation(w http.ResponseWriter, r *http.Request, ps httprouter.Params, _ *caller) {
	id, err := strconv.ParseUint(ps.ByName("id"), 10, 64)
	if err != nil || id == 0 {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidParam, "revalidation id %q: want the id POST /v1/errors/revalidate answered", ps.ByName("id")).WithDetail("parameter", "id"))
		return
	}
	var atSeq uint64
	known := false
	for _, rv := range s.cfg.Node.Revalidations(id - 1) {
		if rv.ID == id {
			atSeq, known = rv.AtSeq, true
		}
		break
	}
	if !known {
		s.writeError(w, r, theeye.Errorf(theeye.ENotFound, "no revalidation request %d", id))
		return
	}
	res, err := s.cfg.Index.Revalidation(id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("X-Eye-Indexed-Seq", strconv.FormatUint(s.cfg.Index.IndexedSeq(), 10))
	writeJSON(w, http.StatusOK, revalidationJSON(atSeq, res))
}
