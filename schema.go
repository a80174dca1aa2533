package theeye

import (
	"encoding/json"
	"time"
)

// Schema is one version of the JSON Schema registered for an event type
// (category + name). It judges the event's data. Versions are numbered 1,
// 2, ... per type, in the order the cluster applied them.
type Schema struct {
	Category string          `json:"category"`
	Name     string          `json:"name"`
	Version  int             `json:"version"`
	Schema   json.RawMessage `json:"schema"`
	// CreatedAt is stamped by the node that accepted the request.
	CreatedAt time.Time `json:"created_at"`
	// EffectiveSeq is the log's last seq when the version was applied: it
	// judges the events with seq > EffectiveSeq, until a later version.
	EffectiveSeq uint64 `json:"effective_seq"`
	// Index is the Raft index of the command that registered it: a
	// revalidation with a larger Index judges against it.
	Index uint64 `json:"index"`
}

// Revalidation is a request, replicated through Raft, to judge stored
// failures again against the schemas registered before it (Index). Every
// node's indexer runs it once, when it has indexed exactly AtSeq events,
// so every node reaches the same verdicts.
type Revalidation struct {
	// ID is the Raft index of the command: also the schema state it
	// judges against (every Schema with a smaller Index).
	ID uint64 `json:"id"`
	// AtSeq is the log's last seq when the command was applied.
	AtSeq uint64 `json:"at_seq"`
	// From and To bound received_at (From inclusive, To exclusive; zero:
	// unbounded). Reason, Category and Name filter when set.
	From        time.Time `json:"from,omitzero"`
	To          time.Time `json:"to,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	Category    string    `json:"category,omitempty"`
	Name        string    `json:"name,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
}
