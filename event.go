package theeye

import (
	"time"
)

// EventID is the 128-bit identifier the accepting node assigns to every
// event (a ULID). When the client sent its own "id", that string is the
// event's id and the idempotency key; EventID is then kept only in the log.
type EventID [16]byte

// Envelope is one event as it travels through Raft and sits in log/: the
// fields the accepting node stamps before raft.Apply, plus the event's raw
// JSON bytes exactly as sent. Everything an event's verdict depends on is in
// here (invariant 3 of DESIGN.md).
type Envelope struct {
	ReceivedAt int64   // Unix nanoseconds, stamped by the node that accepted the request
	App        string  // the app of the key that sent it
	ID         EventID // server-assigned id
	Raw        []byte  // the JSON object as sent
}

// ReceivedTime returns ReceivedAt as a UTC time.
func (e *Envelope) ReceivedTime() time.Time { return time.Unix(0, e.ReceivedAt).UTC() }

// Event is an event parsed from its raw JSON. Strings are copies; Data and
// Extra values alias the raw bytes they were parsed from.
type Event struct {
	ID        string // client idempotency key, "" when absent
	SessionID string
	Category  string
	Name      string
	Data      []byte    // the raw JSON of "data"
	Timestamp time.Time // UTC; zero when it did not parse
	// Extra holds unknown top-level fields, in the order they were sent.
	Extra []Field
}

// Field is one top-level JSON member kept verbatim.
type Field struct {
	Key   string
	Value []byte
}

// Top-level fields of an event that the server owns. An event carrying one
// fails validation with ReasonReservedField.
var reservedFields = [...]string{"seq", "app", "received_at"}

// IsReservedField reports whether key is a server-owned top-level field.
func IsReservedField(key string) bool {
	for _, f := range reservedFields {
		if f == key {
			return true
		}
	}
	return false
}
