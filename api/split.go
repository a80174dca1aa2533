package api

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/theeye/theeye"
)

// splitJSON splits a JSON body — one event object or an array of them —
// into the raw bytes of each event, without copying or building maps: one
// json.Valid pass, then a structural walk over the (now known valid) bytes.
// Every element must be an object of at most lim.event bytes, and there
// may be at most lim.events of them. Errors say which element and, for bad
// JSON, at which byte offset.
func splitJSON(body []byte, lim splitLimits) ([][]byte, error) {
	start := theeye.SkipJSONSpace(body, 0)
	if start == len(body) {
		return nil, theeye.Errorf(theeye.EEmptyBatch, "the body is empty: send an event object, an array of events, or NDJSON")
	}
	if !json.Valid(body) {
		off, msg := theeye.JSONSyntaxError(body)
		return nil, theeye.Errorf(theeye.EInvalidJSON, "the body is not valid JSON: %s (at byte offset %d)", msg, off).
			WithDetail("offset", off)
	}
	if off, ok := validUTF8(body); !ok {
		return nil, theeye.Errorf(theeye.EInvalidJSON, "the body is not valid UTF-8 (at byte offset %d): JSON text must be UTF-8", off).
			WithDetail("offset", off)
	}
	switch body[start] {
	case '{':
		end := theeye.JSONValueEnd(body, start)
		if err := checkEventSize(end-start, lim.event, 0); err != nil {
			return nil, err
		}
		return [][]byte{body[start:end]}, nil
	case '[':
	default:
		return nil, theeye.Errorf(theeye.ENotAnObject, "the body is a JSON %s: send an event object, an array of events, or NDJSON", theeye.JSONKind(body[start:]))
	}
	var events [][]byte
	i := theeye.SkipJSONSpace(body, start+1)
	if body[i] == ']' {
		return nil, theeye.Errorf(theeye.EEmptyBatch, "the array holds no events")
	}
	for idx := 0; ; idx++ {
		end := theeye.JSONValueEnd(body, i)
		elem := body[i:end]
		if elem[0] != '{' {
			return nil, theeye.Errorf(theeye.ENotAnObject, "element %d is a JSON %s, not an event object", idx, theeye.JSONKind(body[i:])).
				WithDetail("index", idx)
		}
		if err := checkEventSize(len(elem), lim.event, idx); err != nil {
			return nil, err
		}
		if len(events) == lim.events {
			return nil, tooManyEvents(lim.events)
		}
		events = append(events, elem)
		i = theeye.SkipJSONSpace(body, end)
		if body[i] == ']' {
			return events, nil
		}
		i = theeye.SkipJSONSpace(body, i+1) // past ','
	}
}

// splitNDJSON splits an NDJSON body: one event object per line; blank
// lines are skipped. Errors name the line (1-based).
func splitNDJSON(body []byte, lim splitLimits) ([][]byte, error) {
	var events [][]byte
	line := 0
	for len(body) > 0 {
		line++
		var l []byte
		if nl := bytes.IndexByte(body, '\n'); nl >= 0 {
			l, body = body[:nl], body[nl+1:]
		} else {
			l, body = body, nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		if !json.Valid(l) {
			off, msg := theeye.JSONSyntaxError(l)
			return nil, theeye.Errorf(theeye.EInvalidJSON, "line %d is not valid JSON: %s (at byte offset %d of the line)", line, msg, off).
				WithDetail("line", line).WithDetail("offset", off)
		}
		if off, ok := validUTF8(l); !ok {
			return nil, theeye.Errorf(theeye.EInvalidJSON, "line %d is not valid UTF-8 (at byte offset %d of the line): JSON text must be UTF-8", line, off).
				WithDetail("line", line).WithDetail("offset", off)
		}
		if l[0] != '{' {
			return nil, theeye.Errorf(theeye.ENotAnObject, "line %d is a JSON %s, not an event object", line, theeye.JSONKind(l)).
				WithDetail("line", line)
		}
		if len(l) > lim.event {
			return nil, theeye.Errorf(theeye.EEventTooLarge, "the event on line %d is %d bytes, over the %d-byte limit", line, len(l), lim.event).
				WithDetail("line", line).WithDetail("size", len(l)).WithDetail("limit", lim.event)
		}
		if len(events) == lim.events {
			return nil, tooManyEvents(lim.events)
		}
		events = append(events, l)
	}
	if len(events) == 0 {
		return nil, theeye.Errorf(theeye.EEmptyBatch, "the body holds no events")
	}
	return events, nil
}

// splitLimits bounds what one request may hold.
type splitLimits struct {
	event  int // bytes of one event (--max-event)
	events int // events in one request (--max-batch-events)
}

func tooManyEvents(limit int) error {
	return theeye.Errorf(theeye.ETooManyEvents, "the request holds more than %d events: split it into several requests", limit).
		WithDetail("limit", limit)
}

// checkEventSize refuses event idx of size bytes (its extent, which the
// caller has already scanned) when it is over maxEvent.
func checkEventSize(size, maxEvent, idx int) error {
	if size > maxEvent {
		return theeye.Errorf(theeye.EEventTooLarge, "event %d is %d bytes, over the %d-byte limit", idx, size, maxEvent).
			WithDetail("index", idx).WithDetail("size", size).WithDetail("limit", maxEvent)
	}
	return nil
}

// validUTF8 reports whether b is valid UTF-8 and, if not, the offset of
// the first bad byte.
func validUTF8(b []byte) (int, bool) {
	if utf8.Valid(b) {
		return 0, true
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i, false
		}
		i += n
	}
	return len(b), false
}
