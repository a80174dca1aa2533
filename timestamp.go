package theeye

import (
	"fmt"
	"math"
	"time"
)

// Timestamp bounds: what fits in int64 nanoseconds since the Unix epoch,
// the unit of every index key.
var (
	minTimestamp = time.Unix(0, math.MinInt64).UTC()
	maxTimestamp = time.Unix(0, math.MaxInt64).UTC()
)

// zonelessLayouts are the forms read as UTC: the brief's
// "YYYY-MM-DD HH:MM:SS[.ffffff]" and its ISO twin with a "T".
var zonelessLayouts = [...]string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

// zonedLayouts are RFC 3339 and the same with a space instead of the "T".
var zonedLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
}

// ParseTimestamp reads an event timestamp: RFC 3339 (any offset), or
// "YYYY-MM-DD HH:MM:SS[.fraction]" (with a space or a "T") read as UTC. The
// result is in UTC and must fit int64 nanoseconds since the epoch (years
// 1678 to 2262).
func ParseTimestamp(s string) (time.Time, error) {
	if len(s) < len("2006-01-02 15:04:05") || len(s) > 64 {
		return time.Time{}, fmt.Errorf("timestamp %q: want RFC 3339 or YYYY-MM-DD HH:MM:SS[.ffffff]", truncate(s, 64))
	}
	var t time.Time
	var err error
	zoned := hasZone(s)
	if zoned {
		for _, l := range zonedLayouts {
			if t, err = time.Parse(l, s); err == nil {
				break
			}
		}
	} else {
		for _, l := range zonelessLayouts {
			if t, err = time.ParseInLocation(l, s, time.UTC); err == nil {
				break
			}
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: want RFC 3339 or YYYY-MM-DD HH:MM:SS[.ffffff]", truncate(s, 64))
	}
	t = t.UTC()
	if t.Before(minTimestamp) || t.After(maxTimestamp) {
		return time.Time{}, fmt.Errorf("timestamp %q: outside the years 1678 to 2262", s)
	}
	return t, nil
}

// hasZone reports whether a timestamp string ends in "Z" or a ±hh:mm offset.
func hasZone(s string) bool {
	if s[len(s)-1] == 'Z' || s[len(s)-1] == 'z' {
		return true
	}
	if len(s) >= 6 {
		tail := s[len(s)-6:]
		if (tail[0] == '+' || tail[0] == '-') && tail[3] == ':' {
			return true
		}
	}
	return false
}

// FormatTime formats t the way every response does: RFC 3339 in UTC with up
// to nanosecond precision, trailing zeros trimmed.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// AppendTime appends FormatTime(t) to dst.
func AppendTime(dst []byte, t time.Time) []byte { return t.UTC().AppendFormat(dst, time.RFC3339Nano) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
