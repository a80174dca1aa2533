package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/index"
	eyelog "github.com/theeye/theeye/log"
	"github.com/theeye/theeye/raftnode"
)

// statusOf maps an error code to its HTTP status.
func statusOf(code string) int {
	switch code {
	case theeye.EInvalidJSON, theeye.ENotAnObject, theeye.EEmptyBatch, theeye.EInvalidParam, theeye.EInvalidRequest:
		return http.StatusBadRequest
	case theeye.EUnauthorized:
		return http.StatusUnauthorized
	case theeye.EForbidden:
		return http.StatusForbidden
	case theeye.ENotFound:
		return http.StatusNotFound
	case theeye.EMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case theeye.EConflict:
		return http.StatusConflict
	case theeye.EBodyTooLarge, theeye.EEventTooLarge, theeye.ETooManyEvents:
		return http.StatusRequestEntityTooLarge
	case theeye.EUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case theeye.ERateLimited, theeye.EOverloaded:
		return http.StatusTooManyRequests
	case theeye.EInsufficientStorage:
		return http.StatusInsufficientStorage
	case theeye.EUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// toDomainError turns errors of the layers below into *theeye.Error.
func toDomainError(err error) *theeye.Error {
	if e, ok := theeye.AsError(err); ok {
		return e
	}
	switch {
	case errors.Is(err, raftnode.ErrNotLeader):
		return theeye.Errorf(theeye.EUnavailable, "this node is not the leader; retry")
	case errors.Is(err, raftnode.ErrNoLeader):
		return theeye.Errorf(theeye.EUnavailable, "the cluster has no leader yet; retry")
	case errors.Is(err, raftnode.ErrClosed), errors.Is(err, index.ErrClosed), errors.Is(err, eyelog.ErrClosed):
		return theeye.Errorf(theeye.EUnavailable, "the node is shutting down; retry on another node")
	case errors.Is(err, context.DeadlineExceeded):
		return theeye.Errorf(theeye.EUnavailable, "the node did not finish in time; retry")
	case errors.Is(err, context.Canceled):
		// The client went away (or the server is stopping): nobody reads
		// this answer, and it is no fault of the node's.
		return theeye.Errorf(theeye.EUnavailable, "the request was cancelled")
	}
	return &theeye.Error{Code: theeye.EInternal, Message: err.Error()}
}

type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// writeError writes API.md's error body with the status of err's code, and
// logs only internal errors (the rest are the client's to read). An
// internal error's text stays in the node's log: the client gets what to
// do and a reference to find the log line by.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := s.publicError(r, err)
	status := statusOf(e.Code)
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests || status == http.StatusInsufficientStorage {
		secs := 1
		if v, ok := e.Details[retryAfterDetail].(int); ok && v > 1 {
			secs = v
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	s.m.rejected.WithLabelValues(e.Code).Inc()
	writeJSON(w, status, errorBody{Error: errorFields{Code: e.Code, Message: e.Message, Details: e.Details}})
}

// retryAfterDetail is the detail in which an error says, in whole seconds,
// when to retry; it becomes the Retry-After header (1 when absent).
const retryAfterDetail = "retry_after_seconds"

// publicError is err as a client may see it: a domain error as it is, an
// internal one logged here and replaced by what to do and a reference to
// the log line.
func (s *Server) publicError(r *http.Request, err error) *theeye.Error {
	e := toDomainError(err)
	if statusOf(e.Code) != http.StatusInternalServerError {
		return e
	}
	ref := errorRef()
	s.logger.Error("internal error", "ref", ref, "method", r.Method, "path", r.URL.Path, "err", err)
	return theeye.Errorf(theeye.EInternal, "the node failed to answer this request; retry, and if it persists tell its operator (reference %s in the node's log)", ref).
		WithDetail("ref", ref)
}

// errorRef is a short random reference that ties an error answer to its
// log line.
func errorRef() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
