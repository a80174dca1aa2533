package index

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/theeye/theeye"
)

// This file renders the JSON the query side returns, once, at index time:
// the event body stored under its session key (s) and the error record stored under
// x/<received_at>/<seq>. Both are built by appending to a reused buffer.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string with encoding/json's escaping
// semantics, except that <, > and & are left as they are (no HTML escaping):
// control characters, '"' and '\\' are escaped, invalid UTF-8 becomes
// U+FFFD and U+2028/U+2029 are escaped so the output is also valid
// JavaScript.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendRawJSON appends a JSON value taken verbatim from an event. A value
// holding a line break (pretty-printed; JSON strings cannot hold a raw one)
// is compacted so that each rendered event stays on one NDJSON line.
func appendRawJSON(dst []byte, v []byte) []byte {
	v = bytes.TrimSpace(v)
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return append(dst, v...)
	}
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, v); err != nil {
		// Cannot happen for values the decoder accepted; keep the bytes.
		return append(dst, v...)
	}
	return buf.Bytes()
}

// appendEventID appends the event's id as a JSON string: the client's id
// when it sent one, else the server-assigned ULID.
func appendEventID(dst []byte, clientID string, id theeye.EventID) []byte {
	if clientID != "" {
		return appendJSONString(dst, clientID)
	}
	var b [ulid.EncodedSize]byte
	_ = ulid.ULID(id).MarshalTextTo(b[:]) // cannot fail: len(b) is EncodedSize
	dst = append(dst, '"')
	dst = append(dst, b[:]...)
	return append(dst, '"')
}

// appendEvent appends the response JSON of a valid event (API.md, "A
// returned event"): server fields first, then the extra top-level fields in
// the order they were sent.
func appendEvent(dst []byte, seq uint64, env *theeye.Envelope, ev *theeye.Event) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"id":`...)
	dst = appendEventID(dst, ev.ID, env.ID)
	dst = append(dst, `,"app":`...)
	dst = appendJSONString(dst, env.App)
	dst = append(dst, `,"session_id":`...)
	dst = appendJSONString(dst, ev.SessionID)
	dst = append(dst, `,"category":`...)
	dst = appendJSONString(dst, ev.Category)
	dst = append(dst, `,"name":`...)
	dst = appendJSONString(dst, ev.Name)
	dst = append(dst, `,"data":`...)
	dst = appendRawJSON(dst, ev.Data)
	dst = append(dst, `,"timestamp":"`...)
	dst = theeye.AppendTime(dst, ev.Timestamp)
	dst = append(dst, `","received_at":"`...)
	dst = theeye.AppendTime(dst, env.ReceivedTime())
	dst = append(dst, '"')
	for _, f := range ev.Extra {
		dst = append(dst, ',')
		dst = appendJSONString(dst, f.Key)
		dst = append(dst, ':')
		dst = appendRawJSON(dst, f.Value)
	}
	return append(dst, '}')
}

// appendErrorRecord appends the record /v1/errors returns for an event that
// failed validation: the reasons and the raw event as sent (as a JSON string
// when it is not JSON at all).
func appendErrorRecord(dst []byte, seq uint64, env *theeye.Envelope, ev *theeye.Event, reasons []theeye.Reason) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"id":`...)
	dst = appendEventID(dst, ev.ID, env.ID)
	dst = append(dst, `,"received_at":"`...)
	dst = theeye.AppendTime(dst, env.ReceivedTime())
	dst = append(dst, `","app":`...)
	dst = appendJSONString(dst, env.App)
	dst = append(dst, `,"reasons":[`...)
	invalidJSON := false
	for i, r := range reasons {
		if i > 0 {
			dst = append(dst, ',')
		}
		invalidJSON = invalidJSON || r.Code == theeye.ReasonInvalidJSON
		dst = append(dst, `{"code":`...)
		dst = appendJSONString(dst, r.Code)
		dst = append(dst, `,"field":`...)
		dst = appendJSONString(dst, r.Field)
		dst = append(dst, `,"message":`...)
		dst = appendJSONString(dst, r.Message)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"event":`...)
	raw := bytes.TrimSpace(env.Raw)
	if len(raw) == 0 || (invalidJSON && !json.Valid(raw)) {
		dst = appendJSONString(dst, string(raw))
	} else {
		dst = appendRawJSON(dst, raw)
	}
	return append(dst, '}')
}
