package theeye

import (
	"errors"
	"fmt"
)

// Error codes shared by every package. The HTTP API maps each to a status
// (api/errors.go) and puts the code in the body's "error.code".
const (
	EInvalidJSON         = "invalid_json"           // 400: the body is not JSON
	ENotAnObject         = "not_an_object"          // 400: an element is not a JSON object
	EEmptyBatch          = "empty_batch"            // 400: no event in the body
	EInvalidParam        = "invalid_parameter"      // 400: a query parameter or field is malformed
	EInvalidRequest      = "invalid_request"        // 400: any other malformed request
	EUnauthorized        = "unauthorized"           // 401: missing or unknown key
	EForbidden           = "forbidden"              // 403: key lacks the scope
	ENotFound            = "not_found"              // 404
	EMethodNotAllowed    = "method_not_allowed"     // 405: the route exists, not with this method
	EConflict            = "conflict"               // 409: e.g. duplicate app name
	EBodyTooLarge        = "body_too_large"         // 413: over --max-body
	EEventTooLarge       = "event_too_large"        // 413: one event over --max-event
	ETooManyEvents       = "too_many_events"        // 413: more events in one request than --max-batch-events
	EUnsupportedMedia    = "unsupported_media_type" // 415
	ERateLimited         = "rate_limited"           // 429: the key's rate limit
	EOverloaded          = "overloaded"             // 429: the cluster indexes behind what it acknowledged
	EInsufficientStorage = "insufficient_storage"   // 507: disk below the watermark
	EUnavailable         = "unavailable"            // 503: no leader, shutting down, not indexed yet
	EInternal            = "internal"               // 500
)

// Error is a domain error with a machine-readable code, a human message and
// optional details (which element, which field, which byte offset).
type Error struct {
	Code    string
	Message string
	Details map[string]any
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns e with one more detail set; it is meant for building
// errors, before they are shared.
func (e *Error) WithDetail(key string, value any) *Error {
	if e.Details == nil {
		e.Details = make(map[string]any, 2)
	}
	e.Details[key] = value
	return e
}

// ErrorCode returns the code of the first *Error in err's chain, or EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EInternal
}

// AsError returns the first *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
