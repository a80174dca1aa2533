package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// storePhase loads a fresh single node with Events events across 100k
// sessions (fewer for small stores, so a session holds ~100 events) and
// 20 categories at 1,000 events per category-hour, then runs W4 (queries),
// W8's stats, W6 and W7 on it, and W5 (restarts).
func (s *Suite) storePhase(ctx context.Context) error {
	nodes, err := s.startCluster(ctx, "store", 1)
	if err != nil {
		return err
	}
	n := nodes[0]
	defer n.Kill9()
	key, err := s.ingestKey(ctx, n.URL)
	if err != nil {
		return err
	}
	t := target{name: "store", url: n.URL, key: key}
	sessions := int(min(100_000, max(1, s.cfg.Events/100)))
	gen := EventGen{Sessions: sessions, Base: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Step: time.Hour / (1000 * Categories)}

	// Load: batches of 1000 events (NDJSON) from 4 loaders, bounded by LoadBudget.
	s.cfg.Progress(fmt.Sprintf("W4 load %d events", s.cfg.Events))
	const batch, loaders = 1000, 4
	var next atomic.Int64
	loadCtx, cancel := context.WithTimeout(ctx, s.cfg.LoadBudget)
	defer cancel()
	rec := NewRecorder(time.Now(), s.cfg.Bucket)
	var wg sync.WaitGroup
	var maxSeq atomic.Uint64
	var refusals atomic.Int64 // 429 and 503 answers, waited out and retried
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	for w := 0; w < loaders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				from := next.Add(batch) - batch
				if from >= s.cfg.Events {
					return
				}
				cnt := int(min(int64(batch), s.cfg.Events-from))
				body := gen.NDJSON(from, cnt)
				t0 := time.Now()
				seq, err := s.loadBatch(loadCtx, t, body, &refusals)
				t1 := time.Now()
				if err != nil {
					if loadCtx.Err() == nil {
						errOnce.Do(func() { firstErr = err })
						rec.Record(t1, 0, 0, 0, err)
					}
					return
				}
				rec.Record(t1, t1.Sub(t0), cnt, len(body), nil)
				for {
					m := maxSeq.Load()
					if seq <= m || maxSeq.CompareAndSwap(m, seq) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	loadTime := time.Since(start)
	if firstErr != nil {
		return fmt.Errorf("W4 load: %w", firstErr)
	}
	ls := rec.Stats(loadTime)
	loaded := ls.Events
	if loaded < s.cfg.Events {
		s.note("W4: loaded %d of %d events within the %s load budget", loaded, s.cfg.Events, s.cfg.LoadBudget)
	}
	s.cfg.Progress("W4 wait for the index")
	idx0 := time.Now()
	if err := n.WaitIndexed(ctx, s.http, maxSeq.Load(), 15*time.Minute); err != nil {
		return err
	}
	catchUp := time.Since(idx0)
	load := Workload{ID: "W4", Variant: "load", Parameters: map[string]any{
		"events": loaded, "sessions": sessions, "categories": Categories, "events_per_category_hour": 1000,
		"batch": batch, "loaders": loaders, "nodes": 1},
		Figures: latencyFigures(ls), Runs: map[string]Stats{"load batch": ls}}
	load.Figures["index_catch_up_s"] = catchUp.Seconds()
	load.Figures["refused_and_retried"] = float64(refusals.Load())
	load.Figures["load_and_index_events_per_s"] = float64(loaded) / (loadTime + catchUp).Seconds()
	s.res.Workloads = append(s.res.Workloads, load)
	s.storage(fmt.Sprintf("nodes=1 store of %d events", loaded), nodes, loaded, ls.Bytes)

	if s.cfg.runs("W4") {
		if err := s.queries(ctx, t, nodes, gen, loaded); err != nil {
			return err
		}
	}
	if s.cfg.runs("W8") {
		if err := s.statsQueries(ctx, t, nodes, gen, loaded); err != nil {
			return err
		}
	}
	s.memory("nodes=1 store load + W4 queries", nodes)

	if s.cfg.runs("W5") {
		s.cfg.Progress("W5 restarts")
		w := Workload{ID: "W5", Variant: fmt.Sprintf("events=%d", loaded), Figures: map[string]float64{}}
		t0 := time.Now()
		if err := n.Stop(60 * time.Second); err != nil {
			return fmt.Errorf("W5: %w", err)
		}
		w.Figures["sigterm_stop_s"] = time.Since(t0).Seconds()
		t0 = time.Now()
		if err := n.StartContext(ctx, 5*time.Minute); err != nil {
			return fmt.Errorf("W5 restart: %w", err)
		}
		w.Figures["restart_to_ready_s"] = time.Since(t0).Seconds()
		n.Kill9()
		t0 = time.Now()
		if err := n.StartContext(ctx, 5*time.Minute); err != nil {
			return fmt.Errorf("W5 restart after kill -9: %w", err)
		}
		w.Figures["kill9_restart_to_ready_s"] = time.Since(t0).Seconds()
		st, err := n.Self(ctx, s.http)
		if err == nil {
			w.Figures["indexed_seq_after"] = float64(st.IndexedSeq)
		}
		s.res.Workloads = append(s.res.Workloads, w)
	}
	return nil
}

// loadBatch posts one batch of the W4 load, and when the node says to
// slow down (429 overloaded, 503) waits its Retry-After (1 to 5 s) and
// sends it again, as the Go client does: a refused request stored nothing.
func (s *Suite) loadBatch(ctx context.Context, t target, body []byte, refusals *atomic.Int64) (uint64, error) {
	for {
		a, err := s.ingest(ctx, t, body)
		if err != nil {
			return 0, err
		}
		switch a.status {
		case http.StatusAccepted:
			return a.seq, nil
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			refusals.Add(1)
			waitFor(ctx, time.Duration(min(max(a.retryAfter, 1), 5))*time.Second)
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("post: %w", err)
			}
		default:
			return 0, fmt.Errorf("post: %d %s: %s", a.status, a.code, a.message)
		}
	}
}

// getBody reads the whole body of a GET (see open).
func (s *Suite) getBody(ctx context.Context, t target, path string, ndjson bool) ([]byte, error) {
	resp, err := s.open(ctx, t, path, ndjson)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// query reads a query's body and counts its events: lines for NDJSON,
// "seq" members for a JSON page.
func (s *Suite) query(ctx context.Context, t target, path string, ndjson bool) (events, size int, err error) {
	b, err := s.getBody(ctx, t, path, ndjson)
	if err != nil {
		return 0, 0, fmt.Errorf("query %w", err)
	}
	if ndjson {
		return bytes.Count(b, []byte("\n")), len(b), nil
	}
	return bytes.Count(b, []byte(`"seq":`)), len(b), nil
}

// queries is W4: one session, a category in a 1-hour window, and an NDJSON
// export of a category for a day, each from one client back to back.
func (s *Suite) queries(ctx context.Context, t target, nodes []*Node, gen EventGen, loaded int64) error {
	span := time.Duration(loaded) * gen.Step
	hours := max(1, int(span/time.Hour))
	days := max(1, int(span/(24*time.Hour)))
	kinds := []struct {
		variant string
		path    func(i int64) string
		ndjson  bool
	}{
		{"session", func(i int64) string {
			return "/v1/sessions/" + SessionID(int((i*7919)%int64(gen.Sessions))) + "/events?limit=1000"
		}, false},
		{"category hour", func(i int64) string {
			from := gen.Base.Add(time.Duration((i*31)%int64(hours)) * time.Hour)
			return "/v1/events?" + url.Values{"category": {CategoryName(int(i % Categories))}, "limit": {"1000"},
				"from": {from.Format(time.RFC3339)}, "to": {from.Add(time.Hour).Format(time.RFC3339)}}.Encode()
		}, false},
		{"category day export", func(i int64) string {
			from := gen.Base.Add(time.Duration((i*7)%int64(days)) * 24 * time.Hour)
			return "/v1/events?" + url.Values{"category": {CategoryName(int(i % Categories))},
				"from": {from.Format(time.RFC3339)}, "to": {from.Add(24 * time.Hour).Format(time.RFC3339)}}.Encode()
		}, true},
	}
	for _, k := range kinds {
		s.cfg.Progress("W4 " + k.variant)
		finish := s.profileNodes(ctx, nodes, "W4", k.variant, time.Now().Add(s.cfg.Warmup/2), s.cfg.W4Duration)
		st, err := ClosedLoop(ctx, 1, s.cfg.Warmup/2, s.cfg.W4Duration, s.cfg.Bucket, func(ctx context.Context, _ int, i int64) (int, int, error) {
			return s.query(ctx, t, k.path(i), k.ndjson)
		})
		finish()
		if err != nil {
			return fmt.Errorf("W4 %s: %w", k.variant, err)
		}
		w := Workload{ID: "W4", Variant: k.variant, Parameters: map[string]any{"store_events": loaded, "clients": 1,
			"duration_s": s.cfg.W4Duration.Seconds(), "hours_in_store": hours, "days_in_store": days},
			Figures: latencyFigures(st), Runs: map[string]Stats{"query": st}}
		if st.Ops > 0 {
			w.Figures["events_per_query"] = float64(st.Events) / float64(st.Ops)
			w.Figures["queries_per_s"] = float64(st.Ops) / st.Elapsed.Seconds()
		}
		if st.Errors > 0 {
			s.note("W4 %s: %d errors, last: %s", k.variant, st.Errors, st.LastErr)
		}
		s.res.Workloads = append(s.res.Workloads, w)
	}
	return nil
}
