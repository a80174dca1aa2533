package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/index"
)

// statsSpan is how far back from to a stats query without from reaches:
// the last hour by minute, the last day by hour, the last 30 days by day.
func statsSpan(interval time.Duration) time.Duration {
	switch interval {
	case time.Minute:
		return time.Hour
	case 24 * time.Hour:
		return 30 * 24 * time.Hour
	}
	return 24 * time.Hour
}

// handleStats is GET /v1/stats?from&to&interval&category&name: counts of
// the valid indexed events by bucket of their timestamp and by type, read
// from the index's rollup (no scan of events). Every bucket that overlaps
// [from, to) is in the answer, whole, empty ones included; to defaults to
// now and from to a span before to that suits the interval (statsSpan).
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	q, p, err := parseStats(r, s.cfg.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.waitIndexed(r.Context(), p); err != nil {
		w.Header().Set("X-Eye-Indexed-Seq", strconv.FormatUint(s.cfg.Index.IndexedSeq(), 10))
		s.writeError(w, r, err)
		return
	}
	st, err := s.cfg.Index.EventStats(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The seq the counts were read at: they count exactly the valid
	// events indexed up to it.
	w.Header().Set("X-Eye-Indexed-Seq", strconv.FormatUint(st.IndexedSeq, 10))
	pb := s.bufs.get()
	defer s.bufs.put(pb)
	buf := st.AppendJSON((*pb)[:0])
	*pb = buf
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.Write(buf)
}

// parseStats reads the parameters of GET /v1/stats; now fills in to.
func parseStats(r *http.Request, now time.Time) (index.StatsQuery, queryParams, error) {
	v := r.URL.Query()
	p := queryParams{wait: defaultWait}
	q := index.StatsQuery{Interval: time.Hour, Category: v.Get("category"), Name: v.Get("name")}
	bad := func(param, format string, args ...any) (index.StatsQuery, queryParams, error) {
		return q, p, theeye.Errorf(theeye.EInvalidParam, format, args...).WithDetail("parameter", param)
	}
	if iv := v.Get("interval"); iv != "" {
		d, ok := index.StatsInterval(iv)
		if !ok {
			return bad("interval", "interval %q: want 1m, 1h or 1d", iv)
		}
		q.Interval = d
	}
	var err error
	if t := v.Get("from"); t != "" {
		if q.From, err = theeye.ParseTimestamp(t); err != nil {
			return bad("from", "from: %v", err)
		}
	}
	q.To = now.UTC()
	if t := v.Get("to"); t != "" {
		if q.To, err = theeye.ParseTimestamp(t); err != nil {
			return bad("to", "to: %v", err)
		}
	}
	if q.From.IsZero() {
		// Clamped to the first timestamp there can be: ParseTimestamp
		// accepts a to near it.
		q.From = q.To.Add(-statsSpan(q.Interval))
		if first := time.Unix(0, -1<<63).UTC(); q.From.Before(first) || q.From.After(q.To) {
			q.From = first
		}
	}
	if !q.To.After(q.From) {
		return bad("to", "to (%s) must be after from (%s)", theeye.FormatTime(q.To), theeye.FormatTime(q.From))
	}
	if err := checkTypeFilter(q.Category, q.Name); err != nil {
		return q, p, err
	}
	if err := parseMinSeq(v, &p); err != nil {
		return q, p, err
	}
	return q, p, nil
}
