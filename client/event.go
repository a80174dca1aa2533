package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/theeye/theeye"
)

// Event is one event to send.
type Event struct {
	// ID is the idempotency key: the server stores an event once per (app,
	// ID), however many times it is sent. Empty: Track and Ingest assign a
	// ULID, so retries of the same event never store it twice.
	ID        string
	SessionID string
	Category  string
	Name      string
	// Data is the payload: anything encoding/json turns into an object
	// (a struct, a map, a json.RawMessage).
	Data any
	// Timestamp is when the event happened; zero means the time of the
	// Track or Ingest call. Sent as RFC 3339 in UTC with nanoseconds.
	Timestamp time.Time
	// Extra holds more top-level fields, kept and returned by the server.
	// A key equal to one of the fields above, or to a field the server owns
	// (seq, app, received_at), is an error.
	Extra map[string]any
}

// ownedField reports whether an event must not carry key in Extra: the
// fields Event names and the ones the server owns (API.md: reserved_field).
func ownedField(key string) bool {
	switch key {
	case "id", "session_id", "category", "name", "data", "timestamp", "seq", "app", "received_at":
		return true
	}
	return false
}

// encode appends the event's JSON object to dst. It fills in ID and
// Timestamp when they are empty, and returns the ID used.
func (ev *Event) encode(dst []byte, now time.Time) ([]byte, string, error) {
	id := ev.ID
	if id == "" {
		id = newID()
	}
	ts := ev.Timestamp
	if ts.IsZero() {
		ts = now
	}
	data, err := marshal(ev.Data)
	if err != nil {
		return dst, "", fmt.Errorf("event %s: encode data: %w", id, err)
	}
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"session_id":`...)
	dst = appendString(dst, ev.SessionID)
	dst = append(dst, `,"category":`...)
	dst = appendString(dst, ev.Category)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, ev.Name)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	dst = append(dst, `,"timestamp":"`...)
	dst = theeye.AppendTime(dst, ts)
	dst = append(dst, '"')
	if len(ev.Extra) > 0 {
		keys := make([]string, 0, len(ev.Extra))
		for k := range ev.Extra {
			if ownedField(k) {
				return dst, "", fmt.Errorf("event %s: Extra[%q]: the field is set by Event's own fields or by the server", id, k)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v, err := marshal(ev.Extra[k])
			if err != nil {
				return dst, "", fmt.Errorf("event %s: encode Extra[%q]: %w", id, k, err)
			}
			dst = append(dst, ',')
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = append(dst, v...)
		}
	}
	return append(dst, '}'), id, nil
}

// errNotObject is returned for raw events that are not a JSON object.
var errNotObject = errors.New("not a JSON object")

// prepareRaw checks that raw is one JSON object and returns it compacted
// onto one line, with an "id" added when it has none, and the id.
func prepareRaw(raw []byte) ([]byte, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, "", errNotObject
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, "", fmt.Errorf("invalid JSON: %w", err)
	}
	var out bytes.Buffer
	out.Grow(len(raw) + 40)
	var id string
	if v, ok := fields["id"]; ok {
		// An id that is not a string is left for the server's validation to
		// report; it cannot serve as an idempotency key here.
		_ = json.Unmarshal(v, &id)
		if err := json.Compact(&out, raw); err != nil {
			return nil, "", fmt.Errorf("invalid JSON: %w", err)
		}
		return out.Bytes(), id, nil
	}
	id = newID()
	out.WriteString(`{"id":`)
	out.Write(appendString(nil, id))
	if len(fields) > 0 {
		out.WriteByte(',')
	}
	// raw starts with '{': compact what follows it after our id.
	var rest bytes.Buffer
	if err := json.Compact(&rest, raw); err != nil {
		return nil, "", fmt.Errorf("invalid JSON: %w", err)
	}
	out.Write(rest.Bytes()[1:])
	return out.Bytes(), id, nil
}

// newID returns a fresh ULID. ulid.Make is safe for concurrent use and
// monotonic within a millisecond.
func newID() string { return ulid.Make().String() }

// marshal encodes v without HTML escaping (the server stores what it gets;
// "<" stays readable). A nil v encodes as null.
func marshal(v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if len(raw) == 0 {
			return []byte("null"), nil
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func appendString(dst []byte, s string) []byte {
	b, _ := marshal(s) // a string always encodes
	return append(dst, b...)
}

// StoredEvent is an event as the server returns it.
type StoredEvent struct {
	Seq        uint64          // log position, dense from 1
	ID         string          // idempotency key (the client's, or one the server assigned)
	App        string          // the app of the key that sent it
	SessionID  string          // session_id
	Category   string          // category
	Name       string          // name
	Data       json.RawMessage // data, as sent
	Timestamp  time.Time       // when it happened (the sender's clock)
	ReceivedAt time.Time       // when the accepting node stamped it
	// Extra holds every other top-level field it was sent with.
	Extra map[string]json.RawMessage
}

// UnmarshalJSON reads API.md's returned event, keeping unknown fields in Extra.
func (e *StoredEvent) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	*e = StoredEvent{}
	var err error
	get := func(k string, v any) {
		raw, ok := m[k]
		if !ok {
			return
		}
		delete(m, k)
		if err == nil {
			if uerr := json.Unmarshal(raw, v); uerr != nil {
				err = fmt.Errorf("decode event field %q: %w", k, uerr)
			}
		}
	}
	get("seq", &e.Seq)
	get("id", &e.ID)
	get("app", &e.App)
	get("session_id", &e.SessionID)
	get("category", &e.Category)
	get("name", &e.Name)
	get("timestamp", &e.Timestamp)
	get("received_at", &e.ReceivedAt)
	if raw, ok := m["data"]; ok {
		e.Data = raw
		delete(m, "data")
	}
	if len(m) > 0 {
		e.Extra = m
	}
	return err
}

// MarshalJSON writes the event in the server's shape, Extra fields inline
// (sorted by key).
func (e StoredEvent) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256+len(e.Data))
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"app":`...)
	b = appendString(b, e.App)
	b = append(b, `,"session_id":`...)
	b = appendString(b, e.SessionID)
	b = append(b, `,"category":`...)
	b = appendString(b, e.Category)
	b = append(b, `,"name":`...)
	b = appendString(b, e.Name)
	b = append(b, `,"data":`...)
	if len(e.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Data...)
	}
	b = append(b, `,"timestamp":"`...)
	b = theeye.AppendTime(b, e.Timestamp)
	b = append(b, `","received_at":"`...)
	b = theeye.AppendTime(b, e.ReceivedAt)
	b = append(b, '"')
	for _, k := range slices.Sorted(maps.Keys(e.Extra)) {
		b = append(b, ',')
		b = appendString(b, k)
		b = append(b, ':')
		b = append(b, e.Extra[k]...)
	}
	return append(b, '}'), nil
}

// ErrorRecord is an event that failed validation (GET /v1/errors).
type ErrorRecord struct {
	Seq        uint64          `json:"seq"`
	ID         string          `json:"id,omitempty"`
	ReceivedAt time.Time       `json:"received_at"`
	App        string          `json:"app"`
	Reasons    []Reason        `json:"reasons"`
	Event      json.RawMessage `json:"event"` // the event as sent
}

// Reason is one reason an event failed validation.
type Reason struct {
	Code    string `json:"code"`    // e.g. "timestamp_in_future", "schema_violation"
	Field   string `json:"field"`   // JSON pointer from the event's root, e.g. "/data/form/first_name"
	Message string `json:"message"` // human sentence
}

// Ack is the server's answer to an ingest request.
type Ack struct {
	Accepted int    `json:"accepted"` // events stored (duplicates included)
	Seq      uint64 `json:"seq"`      // log position of the request's last event
	// IDs are the idempotency ids of the events sent, in order, including
	// those the client assigned.
	IDs []string `json:"-"`
}
