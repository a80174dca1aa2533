package main

import "strings"

// streamStatusCases are bad requests to the stream and to the status of
// an event id: refused before anything is streamed or looked up.
func streamStatusCases() []hostileCase {
	return []hostileCase{
		{"stream", "from_seq=-1", func(h *hostile) (int, string) { return h.query("/v1/stream?from_seq=-1") }, 400, "invalid_parameter"},
		{"stream", "from_seq past 2^64", func(h *hostile) (int, string) { return h.query("/v1/stream?from_seq=18446744073709551616") }, 400, "invalid_parameter"},
		{"stream", "a Last-Event-ID that is not a seq", func(h *hostile) (int, string) {
			return h.request("GET", "/v1/stream", h.read, nil, "Last-Event-ID", "'; DROP TABLE events")
		}, 400, "invalid_parameter"},
		{"stream", "two Last-Event-ID headers", func(h *hostile) (int, string) {
			return h.request("GET", "/v1/stream", h.read, nil, "Last-Event-ID", "1", "Last-Event-ID", "2")
		}, 400, "invalid_parameter"},
		{"stream", "a category filter longer than an event may be", func(h *hostile) (int, string) {
			return h.query("/v1/stream?category=" + strings.Repeat("c", hostileMaxEvent+1))
		}, 400, "invalid_parameter"},
		{"stream", "a filter given twice", func(h *hostile) (int, string) { return h.query("/v1/stream?app=a&app=b") }, 400, "invalid_parameter"},
		{"stream", "name without category", func(h *hostile) (int, string) { return h.query("/v1/stream?name=pageview") }, 400, "invalid_parameter"},
		{"stream", "an ingest key streaming", func(h *hostile) (int, string) { return h.request("GET", "/v1/stream", h.ingest, nil) }, 403, "forbidden"},
		{"status", "an event id over 256 bytes", func(h *hostile) (int, string) {
			return h.query("/v1/events/" + strings.Repeat("i", 257) + "/status?app=shop")
		}, 400, "invalid_parameter"},
		{"status", "a read key without app", func(h *hostile) (int, string) { return h.query("/v1/events/x/status") }, 400, "invalid_parameter"},
		{"status", "seq=0", func(h *hostile) (int, string) { return h.query("/v1/events/x/status?app=shop&seq=0") }, 400, "invalid_parameter"},
		{"status", "an ingest key asking about another app", func(h *hostile) (int, string) {
			return h.request("GET", "/v1/events/x/status?app=other", h.ingest, nil)
		}, 403, "forbidden"},
		{"status", "an id nobody sent", func(h *hostile) (int, string) { return h.query("/v1/events/nobody/status?app=shop") }, 404, "not_found"},
		{"status", "an id with an escaped slash", func(h *hostile) (int, string) { return h.query("/v1/events/a%2F..%2Fb/status?app=shop") }, 404, "not_found"},
	}
}
