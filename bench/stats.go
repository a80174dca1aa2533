package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"time"
)

// statsQueries is W8's stats half, on the W4 store: GET /v1/stats for 30
// days by hour from the store's first timestamp (720 buckets, of which the
// store fills min(720, its hours) with 20 types each), for every type and
// for one category, one client back to back. (W8's other half, the latency
// of /v1/stream, runs on the 3-node cluster: streamlat.go.)
func (s *Suite) statsQueries(ctx context.Context, t target, nodes []*Node, gen EventGen, loaded int64) error {
	from, to := gen.Base, gen.Base.Add(30*24*time.Hour)
	span := time.Duration(loaded) * gen.Step
	kinds := []struct{ variant, category string }{
		{"stats 30d hourly", ""},
		{"stats 30d hourly, one category", CategoryName(3)},
	}
	for _, k := range kinds {
		s.cfg.Progress("W8 " + k.variant)
		v := url.Values{"interval": {"1h"}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
		if k.category != "" {
			v.Set("category", k.category)
		}
		path := "/v1/stats?" + v.Encode()
		counted, size, err := s.statsQuery(ctx, t, path)
		if err != nil {
			return fmt.Errorf("W8 %s: %w", k.variant, err)
		}
		if want := loaded; k.category == "" && span <= 30*24*time.Hour && counted != want {
			s.note("W8 %s: the buckets count %d events, the store holds %d", k.variant, counted, want)
		}
		finish := s.profileNodes(ctx, nodes, "W8", k.variant, time.Now().Add(s.cfg.Warmup/2), s.cfg.W4Duration)
		st, err := ClosedLoop(ctx, 1, s.cfg.Warmup/2, s.cfg.W4Duration, s.cfg.Bucket, func(ctx context.Context, _ int, _ int64) (int, int, error) {
			_, n, err := s.statsQuery(ctx, t, path)
			return 1, n, err
		})
		finish()
		if err != nil {
			return fmt.Errorf("W8 %s: %w", k.variant, err)
		}
		w := Workload{ID: "W8", Variant: k.variant, Parameters: map[string]any{"store_events": loaded, "clients": 1,
			"duration_s": s.cfg.W4Duration.Seconds(), "interval": "1h", "from": from, "to": to, "category": k.category,
			"store_hours": int(span / time.Hour)},
			Figures: latencyFigures(st), Runs: map[string]Stats{"query": st}}
		w.Figures["buckets_per_answer"] = 720
		w.Figures["events_counted"] = float64(counted)
		w.Figures["bytes_per_answer"] = float64(size)
		if st.Ops > 0 {
			w.Figures["queries_per_s"] = float64(st.Ops) / st.Elapsed.Seconds()
		}
		if st.Errors > 0 {
			s.note("W8 %s: %d errors, last: %s", k.variant, st.Errors, st.LastErr)
		}
		s.res.Workloads = append(s.res.Workloads, w)
	}
	return nil
}

// statsQuery runs one stats query and returns the events its buckets
// count (the sum of their totals) and the size of the answer.
func (s *Suite) statsQuery(ctx context.Context, t target, path string) (counted int64, size int, err error) {
	b, err := s.getBody(ctx, t, path, false)
	if err != nil {
		return 0, 0, fmt.Errorf("stats %w", err)
	}
	if n := bytes.Count(b, []byte(`"start":`)); n != 720 {
		return 0, 0, fmt.Errorf("stats %s: %d buckets, want 720: %s", path, n, bytes.TrimSpace(b[:min(len(b), 512)]))
	}
	// Sum the buckets' totals without decoding the whole answer.
	for rest := b; ; {
		i := bytes.Index(rest, []byte(`"total":`))
		if i < 0 {
			break
		}
		rest = rest[i+len(`"total":`):]
		n := int64(0)
		for len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' {
			n = n*10 + int64(rest[0]-'0')
			rest = rest[1:]
		}
		counted += n
	}
	return counted, len(b), nil
}
