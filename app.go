package theeye

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"time"
)

// Scope is what a key may do.
type Scope string

// The scopes of API.md. Admin implies the others.
const (
	ScopeIngest Scope = "ingest"
	ScopeRead   Scope = "read"
	ScopeAdmin  Scope = "admin"
)

// ValidScope reports whether s is one of the known scopes.
func ValidScope(s Scope) bool {
	return s == ScopeIngest || s == ScopeRead || s == ScopeAdmin
}

// App is an application that sends events: a trusted client.
type App struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Key is an API key. Only the SHA-256 hash of its secret is ever stored.
type Key struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	App       string    `json:"app,omitempty"` // the app events sent with this key belong to
	Scopes    []Scope   `json:"scopes"`
	Hash      string    `json:"hash"` // hex SHA-256 of the secret
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked,omitempty"`
	// RateLimit, when set, bounds the events the key may send, for the
	// cluster as a whole (the leader holds its bucket).
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// RateLimit is a token bucket: EventsPerSecond tokens a second, at most
// Burst at once; an ingest request takes one token per event, all of them
// or none.
type RateLimit struct {
	EventsPerSecond float64 `json:"events_per_second"`
	Burst           int     `json:"burst"`
}

// maxRate bounds what a rate limit may say, far above what a cluster takes.
const maxRate = 1e9

// Validate returns an *Error naming the field that is out of range. A zero
// Burst stands for EventsPerSecond (rounded up): call Normalized first.
func (r RateLimit) Validate() error {
	switch {
	case !(r.EventsPerSecond > 0) || r.EventsPerSecond > maxRate:
		return Errorf(EInvalidRequest, "rate_limit.events_per_second %v: want a number above 0, at most %g", r.EventsPerSecond, float64(maxRate)).
			WithDetail("field", "rate_limit.events_per_second")
	case r.Burst < 1 || r.Burst > maxRate:
		return Errorf(EInvalidRequest, "rate_limit.burst %d: want a whole number from 1 to %g", r.Burst, float64(maxRate)).
			WithDetail("field", "rate_limit.burst")
	}
	return nil
}

// Normalized returns r with a zero Burst set to EventsPerSecond, rounded
// up (API.md: the burst defaults to the rate).
func (r RateLimit) Normalized() RateLimit {
	if r.Burst == 0 && r.EventsPerSecond > 0 && r.EventsPerSecond <= maxRate {
		r.Burst = int(math.Ceil(r.EventsPerSecond))
	}
	return r
}

// Has reports whether the key grants scope s (admin grants everything).
func (k *Key) Has(s Scope) bool {
	return slices.Contains(k.Scopes, s) || slices.Contains(k.Scopes, ScopeAdmin)
}

// EventApp is the app stamped on events sent with this key: the key's app,
// or for a key bound to no app "key:" and the key's id. App names cannot
// hold a ':', so a key without an app never passes as an app (nor shares
// an app's idempotency ids).
func (k *Key) EventApp() string {
	if k.App != "" {
		return k.App
	}
	return "key:" + k.ID
}

// HashSecret returns the hex SHA-256 of a key secret, the only form in which
// secrets are stored or replicated.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Deletion is a request, replicated through Raft, to erase a session:
// every event and error record of SessionID logged at or before AtSeq
// leaves every query and every file of every node. Later events of the
// session are kept.
type Deletion struct {
	// ID is the Raft index of the request.
	ID          uint64    `json:"id"`
	SessionID   string    `json:"session_id"`
	AtSeq       uint64    `json:"at_seq"`
	RequestedAt time.Time `json:"requested_at"`
}

// Stages of an erasure on a node, in order: raftnode drives a deletion
// through them, the index records where it is.
const (
	EraseKeys    = 0 // the session's index keys are being deleted
	EraseLog     = 1 // the log's envelopes are next
	EraseRaft    = 2 // the Raft log store and the snapshots are next
	EraseCompact = 3 // the index's files are next
	EraseDone    = 4 // no file of the node holds the events
)
