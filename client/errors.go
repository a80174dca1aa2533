package client

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Sentinel errors.
var (
	// ErrQueueFull is returned by Track when the queue holds Config.QueueSize
	// events and Config.OnFull is ReturnError. The event was not queued.
	ErrQueueFull = errors.New("client: queue full")

	// ErrClosed is returned by Track, Flush and Close after Close was called.
	ErrClosed = errors.New("client: closed")
)

// Error is an answer of the server that is not a success: its HTTP status and
// the body of API.md ({"error": {"code", "message", "details"}}). Requests
// that got a 400, 401, 403, 404, 409, 413 or 415 are never retried; a 429 or
// 503 is retried and only reaches the caller once the retries are exhausted.
type Error struct {
	Status  int            // HTTP status
	Code    string         // the server's error code, e.g. "unauthorized"
	Message string         // the server's human sentence
	Details map[string]any // optional: which element, field or parameter
	Server  string         // base URL of the server that answered
}

// Error implements error: "401 unauthorized: unknown or revoked key".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Temporary reports whether the request may succeed if sent again later:
// true for 429 and the 5xx gateway and availability statuses.
func (e *Error) Temporary() bool { return retryableStatus(e.Status) }

// retryableStatus lists the statuses a request is retried on. 500 is not
// among them: it is a server bug, and retrying it hides it.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
		http.StatusInsufficientStorage:
		return true
	}
	return false
}

// BatchError reports a batch of events that Track queued and that could not
// be stored: the server refused it (Err holds an *Error with a 4xx status),
// the retries were exhausted (Err holds the last error), or Close gave up on
// it (Err wraps the context's error). None of the batch's events are stored
// by the request that failed; they are counted in Stats().Failed and handed
// back here, encoded as sent, so the caller can log them or send them again
// (their ids make a later re-send safe).
type BatchError struct {
	IDs    []string // the idempotency ids of the batch's events
	Events [][]byte // each event's JSON as it was sent
	Err    error    // why
}

// Error implements error.
func (e *BatchError) Error() string {
	return "send batch of " + strconv.Itoa(len(e.IDs)) + " events: " + e.Err.Error()
}

// Unwrap returns the cause, so errors.As finds an *Error inside.
func (e *BatchError) Unwrap() error { return e.Err }
