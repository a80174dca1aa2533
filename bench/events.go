package bench

import (
	"fmt"
	"strconv"
	"time"
)

// Categories are the 20 event categories every workload draws from.
const Categories = 20

// EventGen builds realistic events (about 250–300 bytes of JSON, shaped
// like the brief's examples) without randomness, so runs are repeatable:
// event i belongs to session hash(i) mod Sessions, category i mod 20, and
// has timestamp Base + i*Step.
type EventGen struct {
	Sessions int
	Base     time.Time
	Step     time.Duration
}

// SessionID is the id of session s: a UUID-shaped string.
func SessionID(s int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(s)*2654435761, s&0xffff, s%4096, (s/7)%4096, uint64(s)*0x9e3779b97f4a7c15>>16)
}

// CategoryName is the name of category c.
func CategoryName(c int) string { return "category-" + strconv.Itoa(c) }

// eventName is the name of event i.
func eventName(i int64) string {
	switch i % 5 {
	case 0:
		return "pageview"
	case 1:
		return "cta click"
	case 2:
		return "submit"
	case 3:
		return "scroll"
	}
	return "hover"
}

// session maps event i to its session with a cheap hash, so the events of
// one session are spread over time.
func (g EventGen) session(i int64) int {
	x := uint64(i) * 0x9e3779b97f4a7c15
	x ^= x >> 29
	return int(x % uint64(g.Sessions))
}

// Session is the session of event i.
func (g EventGen) Session(i int64) int { return g.session(i) }

// Time is the timestamp of event i.
func (g EventGen) Time(i int64) time.Time { return g.Base.Add(time.Duration(i) * g.Step) }

// Append appends event i as one line of JSON (no newline).
func (g EventGen) Append(dst []byte, i int64) []byte {
	s := g.session(i)
	dst = append(dst, `{"session_id":"`...)
	dst = append(dst, SessionID(s)...)
	dst = append(dst, `","category":"`...)
	dst = append(dst, CategoryName(int(i%Categories))...)
	dst = append(dst, `","name":"`...)
	dst = append(dst, eventName(i)...)
	dst = append(dst, `","data":{"host":"www.consumeraffairs.com","path":"/reviews/`...)
	dst = strconv.AppendInt(dst, i%9973, 10)
	dst = append(dst, `","element":"chat bubble","form":{"first_name":"John","last_name":"Doe"},"duration_ms":`...)
	dst = strconv.AppendInt(dst, i%1500, 10)
	dst = append(dst, `},"timestamp":"`...)
	dst = g.Time(i).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, `"}`...)
	return dst
}

// NDJSON returns events [from, from+n) as an NDJSON body.
func (g EventGen) NDJSON(from int64, n int) []byte {
	b := make([]byte, 0, n*300)
	for i := from; i < from+int64(n); i++ {
		b = g.Append(b, i)
		b = append(b, '\n')
	}
	return b
}
