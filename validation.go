package theeye

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Reason codes of API.md: why an event failed validation.
const (
	ReasonMissingField      = "missing_field"
	ReasonWrongType         = "wrong_type"
	ReasonReservedField     = "reserved_field"
	ReasonEmptyData         = "empty_data"
	ReasonInvalidTimestamp  = "invalid_timestamp"
	ReasonTimestampInFuture = "timestamp_in_future"
	ReasonTimestampTooOld   = "timestamp_too_old"
	ReasonSchemaViolation   = "schema_violation"
	ReasonUnknownEventType  = "unknown_event_type"
	ReasonInvalidJSON       = "invalid_json"
	// ReasonDuplicateIDConflict: the app already sent an event with this
	// id and a different payload (an identical retry is a silent duplicate).
	ReasonDuplicateIDConflict = "duplicate_id_conflict"
)

// Reason is one validation failure: a code, the JSON pointer (from the
// event's root) of the field concerned, and a human message.
type Reason struct {
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Policy is what validation depends on besides the event itself. It is the
// same on every node (flags of the cluster), so every node reaches the same
// verdict.
type Policy struct {
	// MaxClockSkew is how far past its received_at an event's timestamp may
	// be before it is timestamp_in_future.
	MaxClockSkew time.Duration
	// MaxEventAge, when positive, is how far before its received_at an
	// event's timestamp may be before it is timestamp_too_old.
	MaxEventAge time.Duration
}

// DefaultPolicy is API.md's default: 5 minutes of skew, no age limit.
func DefaultPolicy() Policy { return Policy{MaxClockSkew: 5 * time.Minute} }

// ParseEvent parses an event's raw JSON and judges it against p, using only
// the envelope's received_at as "now" (invariant 3: never the wall clock).
// It returns the parsed event (as much as could be read) and every reason it
// fails; no reasons means valid. Schema validation is not done here.
func ParseEvent(raw []byte, receivedAt time.Time, p Policy) (Event, []Reason) {
	if !json.Valid(raw) {
		_, msg := JSONSyntaxError(raw)
		return Event{}, []Reason{{Code: ReasonInvalidJSON, Field: "", Message: "event is not JSON: " + msg}}
	}
	return ParseValidEvent(raw, receivedAt, p)
}

// ParseValidEvent is ParseEvent for raw bytes already known to be valid
// JSON: every event in the log, since ingest refuses a request with a body
// that is not (api's split, json.Valid and UTF-8). It skips the second
// validation pass, a third of what parsing an event costs. On bytes that
// are not valid JSON it never panics; what its walk sees of them (an
// object that does not close where the bytes end) is invalid_json, what
// it does not (a broken literal inside a value) passes.
func ParseValidEvent(raw []byte, receivedAt time.Time, p Policy) (Event, []Reason) {
	var ev Event
	var reasons []Reason
	it, ok := newObjectIter(raw)
	if !ok {
		return ev, []Reason{{Code: ReasonInvalidJSON, Field: "", Message: "event is not a JSON object"}}
	}
	var seen [5]bool // session_id, category, name, data, timestamp
	for {
		rawKey, value, more := it.next()
		if !more {
			break
		}
		f := Field{Value: value}
		if k, ok := jsonString(rawKey); ok {
			f.Key = k
		}
		switch f.Key {
		case "session_id", "category", "name":
			s, ok := jsonString(f.Value)
			i := 0
			if f.Key == "category" {
				i = 1
			} else if f.Key == "name" {
				i = 2
			}
			seen[i] = true
			switch {
			case !ok:
				reasons = append(reasons, Reason{ReasonWrongType, "/" + f.Key, fmt.Sprintf("%s must be a string, got %s", f.Key, JSONKind(f.Value))})
			case s == "":
				reasons = append(reasons, Reason{ReasonMissingField, "/" + f.Key, f.Key + " must not be empty"})
			default:
				switch i {
				case 0:
					ev.SessionID = s
				case 1:
					ev.Category = s
				case 2:
					ev.Name = s
				}
			}
		case "data":
			seen[3] = true
			v := bytes.TrimSpace(f.Value)
			if len(v) == 0 || v[0] != '{' {
				reasons = append(reasons, Reason{ReasonWrongType, "/data", "data must be an object, got " + JSONKind(f.Value)})
				continue
			}
			ev.Data = v
			if isEmptyObject(v) {
				reasons = append(reasons, Reason{ReasonEmptyData, "/data", "data must not be empty"})
			}
		case "timestamp":
			seen[4] = true
			s, ok := jsonString(f.Value)
			if !ok {
				reasons = append(reasons, Reason{ReasonWrongType, "/timestamp", "timestamp must be a string, got " + JSONKind(f.Value)})
				continue
			}
			t, err := ParseTimestamp(s)
			if err != nil {
				reasons = append(reasons, Reason{ReasonInvalidTimestamp, "/timestamp", err.Error()})
				continue
			}
			ev.Timestamp = t
			if t.After(receivedAt.Add(p.MaxClockSkew)) {
				reasons = append(reasons, Reason{ReasonTimestampInFuture, "/timestamp",
					fmt.Sprintf("timestamp %s is %s after received_at %s (allowed skew %s)",
						FormatTime(t), t.Sub(receivedAt).Round(time.Millisecond), FormatTime(receivedAt), p.MaxClockSkew)})
			} else if p.MaxEventAge > 0 && t.Before(receivedAt.Add(-p.MaxEventAge)) {
				reasons = append(reasons, Reason{ReasonTimestampTooOld, "/timestamp",
					fmt.Sprintf("timestamp %s is %s before received_at %s (max event age %s)",
						FormatTime(t), receivedAt.Sub(t).Round(time.Millisecond), FormatTime(receivedAt), p.MaxEventAge)})
			}
		case "id":
			s, ok := jsonString(f.Value)
			if !ok {
				reasons = append(reasons, Reason{ReasonWrongType, "/id", "id must be a string, got " + JSONKind(f.Value)})
				continue
			}
			if s == "" {
				reasons = append(reasons, Reason{ReasonMissingField, "/id", "id must not be empty when present"})
				continue
			}
			if len(s) > 256 {
				reasons = append(reasons, Reason{ReasonWrongType, "/id", "id must be at most 256 bytes"})
				continue
			}
			ev.ID = s
		default:
			if IsReservedField(f.Key) {
				reasons = append(reasons, Reason{ReasonReservedField, "/" + EscapePointer(f.Key), f.Key + " is set by the server and must not be sent"})
				continue
			}
			ev.Extra = setField(ev.Extra, f)
		}
	}
	if !it.closed() {
		// What the walk can see of bytes that are not JSON (the log holds
		// none: this is for a log written by anything but ingest).
		return Event{}, []Reason{{Code: ReasonInvalidJSON, Field: "", Message: "event is not JSON: the object does not end where its bytes do"}}
	}
	names := [...]string{"session_id", "category", "name", "data", "timestamp"}
	for i, ok := range seen {
		if !ok {
			reasons = append(reasons, Reason{ReasonMissingField, "/" + names[i], names[i] + " is required"})
		}
	}
	return ev, reasons
}

// setField appends f, or replaces the value of a member with the same key
// (a repeated key keeps its last value, at its first position).
func setField(fields []Field, f Field) []Field {
	for i := range fields {
		if fields[i].Key == f.Key {
			fields[i].Value = f.Value
			return fields
		}
	}
	return append(fields, f)
}

func jsonString(v []byte) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	plain := true
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' || c < 0x20 || c == '"' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

func isEmptyObject(v []byte) bool {
	v = bytes.TrimSpace(v)
	if len(v) < 2 || v[0] != '{' {
		return false
	}
	return len(bytes.TrimSpace(v[1:len(v)-1])) == 0
}

// JSONKind names the kind of the JSON value v holds (object, array,
// string, boolean, null, number), for error messages.
func JSONKind(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// EscapePointer escapes a key for a JSON pointer (RFC 6901).
func EscapePointer(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '~':
			b = append(b, '~', '0')
		case '/':
			b = append(b, '~', '1')
		default:
			b = append(b, s[i])
		}
	}
	return string(b)
}
