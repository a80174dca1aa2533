package main

import (
	"strconv"
	"strings"
	"time"
)

// parseTime reads a --from/--to value: RFC 3339, "YYYY-MM-DD HH:MM:SS[.f]"
// (UTC, as the server reads it), a date (midnight UTC), "now", or a
// duration before now ("-15m", "-36h", "-7d").
func parseTime(flag, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, nil
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := parseAgo(s[1:])
		if err != nil {
			return time.Time{}, badTime(flag, s)
		}
		return now.Add(-d), nil
	case len(s) == len("2006-01-02"):
		t, err := time.ParseInLocation("2006-01-02", s, time.UTC)
		if err != nil {
			return time.Time{}, badTime(flag, s)
		}
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badTime(flag, s)
}

// parseAgo reads a Go duration, or a whole number of days ("7d").
func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, strconv.ErrSyntax
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, strconv.ErrSyntax
	}
	return d, nil
}

func badTime(flag, s string) error {
	return usageErrf(`--%s %q: want RFC 3339 (2021-01-01T09:15:27Z), "2021-01-01 09:15:27" (UTC), a date (2021-01-01), "now" or a time before now (-15m, -7d)`, flag, s)
}

// timeRange reads --from and --to.
func timeRange(from, to string) (time.Time, time.Time, error) {
	now := time.Now()
	f, err := parseTime("from", from, now)
	if err != nil {
		return f, f, err
	}
	t, err := parseTime("to", to, now)
	if err != nil {
		return f, t, err
	}
	if !f.IsZero() && !t.IsZero() && !t.After(f) {
		return f, t, usageErrf("--to (%s) must be after --from (%s)", fmtTime(t), fmtTime(f))
	}
	return f, t, nil
}
