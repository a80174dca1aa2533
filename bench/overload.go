package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// W9, overload: the cluster must push back (429 overloaded, 507) rather
// than acknowledge more than it indexes. It measures what the 3-node
// cluster indexes per second (the slowest node, in a closed-loop burst),
// then offers an open load of 2× and 5× that, spread over the nodes, and
// reads the leader's index lag every 250 ms. A refused request is not
// retried (bench/README.md says why): the share refused is the figure.

// w9Factors are the offered loads, as multiples of the measured rate.
func w9Factors() []float64 { return []float64{2, 5} }

// w9MaxInFlight bounds the open loop's requests in flight: above the
// server's commit queue (--max-commit-queue, 2048 requests), so that
// the generator is not what holds the load back first.
const w9MaxInFlight = 4096

// w9 runs the overload workload on a cluster at rest: the capacity burst,
// then one open-loop run per factor, each from rest.
func (s *Suite) w9(ctx context.Context, t target, nodes []*Node) ([]Workload, error) {
	s.cfg.Progress("W9 capacity")
	if _, err := s.settle(ctx, nodes); err != nil {
		return nil, err
	}
	capW, capacity, err := s.w9Capacity(ctx, t, nodes)
	if err != nil {
		return nil, err
	}
	ws := []Workload{capW}
	for _, f := range w9Factors() {
		s.cfg.Progress(fmt.Sprintf("W9 overload %gx", f))
		if _, err := s.settle(ctx, nodes); err != nil {
			return ws, err
		}
		w, err := s.w9Run(ctx, t, nodes, capacity, f)
		if err != nil {
			return ws, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// ingestAnswer is what one POST /v1/events got.
type ingestAnswer struct {
	status     int
	code       string // the error body's code, "" on 202
	message    string // the error body's message
	seq        uint64 // the ack's seq (the last event's)
	retryAfter int    // Retry-After in seconds, 0 when absent
}

// ingest sends one NDJSON batch to t and returns the answer, whatever its
// status; the error is only a request that got no answer.
func (s *Suite) ingest(ctx context.Context, t target, body []byte) (ingestAnswer, error) {
	var a ingestAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return a, fmt.Errorf("ingest: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+t.key)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := s.http.Do(req)
	if err != nil {
		return a, fmt.Errorf("ingest: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	_, _ = io.Copy(io.Discard, resp.Body)
	a.status = resp.StatusCode
	a.retryAfter, _ = strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if a.status == http.StatusAccepted {
		a.seq = parseSeq(b)
		return a, nil
	}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &eb) == nil {
		a.code, a.message = eb.Error.Code, eb.Error.Message
	}
	return a, nil
}

// outcome names an answer: accepted, overloaded, rate_limited,
// insufficient_storage, another status ("http_503"), or "no_answer".
func (a ingestAnswer) outcome(err error) string {
	switch {
	case err != nil:
		return "no_answer"
	case a.status == http.StatusAccepted:
		return "accepted"
	case a.status == http.StatusTooManyRequests && (a.code == "overloaded" || a.code == "rate_limited"):
		return a.code
	case a.status == http.StatusInsufficientStorage:
		return "insufficient_storage"
	}
	return "http_" + strconv.Itoa(a.status)
}

// refusal reports whether the outcome is the server saying "later".
func refusal(outcome string) bool {
	return outcome == "overloaded" || outcome == "rate_limited" || outcome == "insufficient_storage"
}

// waitFor waits d or until ctx ends.
func waitFor(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// w9Bodies are the batches W9 sends (as W2's: BatchSize events each).
func (s *Suite) w9Bodies() [][]byte {
	gen := EventGen{Sessions: 100_000, Base: time.Now().Add(-time.Hour), Step: time.Microsecond}
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = gen.NDJSON(int64(i*s.cfg.BatchSize), s.cfg.BatchSize)
	}
	return bodies
}

// spread is one target per node (followers forward to the leader).
func spread(t target, nodes []*Node) []target {
	ts := make([]target, len(nodes))
	for i, nd := range nodes {
		ts[i] = target{name: t.name, url: nd.URL, key: t.key}
	}
	return ts
}

// w9Capacity is a closed-loop burst of W2's load (W2Clients clients,
// BatchSize events per request, client c to node c mod 3) that measures
// what every node indexes per second over the window; the slowest node's
// rate is the cluster's. A refused client waits Retry-After, as the Go
// client would, so the burst measures what the cluster sustains.
func (s *Suite) w9Capacity(ctx context.Context, t target, nodes []*Node) (Workload, float64, error) {
	bodies := s.w9Bodies()
	ts := spread(t, nodes)
	var refused atomic.Int64
	sampler := s.sampleLag(ctx, nodes, lagSampleEvery)
	begin := time.Now()
	st, err := ClosedLoop(ctx, s.cfg.W2Clients, s.cfg.Warmup, s.cfg.Duration, s.cfg.Bucket, func(ctx context.Context, w int, i int64) (int, int, error) {
		b := bodies[i%int64(len(bodies))]
		a, err := s.ingest(ctx, ts[w%len(ts)], b)
		if o := a.outcome(err); o != "accepted" {
			if refusal(o) {
				refused.Add(1)
				waitFor(ctx, time.Duration(min(max(a.retryAfter, 1), 5))*time.Second)
			}
			return 0, 0, fmt.Errorf("W9 capacity: %s (%d %s)", o, a.status, a.code)
		}
		return s.cfg.BatchSize, len(b), nil
	})
	samples := sampler.stop()
	if err != nil {
		return Workload{}, 0, fmt.Errorf("W9 capacity: %w", err)
	}
	from, to := begin.Add(s.cfg.Warmup), begin.Add(s.cfg.Warmup+s.cfg.Duration)
	w := Workload{ID: "W9", Variant: fmt.Sprintf("nodes=%d capacity", len(nodes)),
		Parameters: map[string]any{"clients": s.cfg.W2Clients, "events_per_request": s.cfg.BatchSize, "warmup_s": s.cfg.Warmup.Seconds(),
			"duration_s": s.cfg.Duration.Seconds(), "target": "client c to node c mod " + strconv.Itoa(len(nodes)),
			"on_refusal": "wait Retry-After (at most 5 s), not retried"},
		Figures: latencyFigures(st), Runs: map[string]Stats{"batch": st}}
	slowest := math.Inf(1)
	for j, nd := range nodes {
		r, ok := indexedRate(samples, j, from, to)
		if !ok {
			s.note("W9 capacity: no two readings of %s's indexed seq in the window", nd.ID)
			continue
		}
		w.Figures[nd.ID+"_indexed_events_per_s"] = r
		slowest = min(slowest, r)
	}
	if refused.Load() > 0 {
		w.Figures["refused_requests"] = float64(refused.Load())
	}
	if math.IsInf(slowest, 1) || slowest <= 0 {
		return w, 0, errors.New("W9 capacity: no node's indexing rate could be measured")
	}
	w.Figures["indexed_events_per_s"] = slowest
	return w, slowest, nil
}

// indexedRate is node j's indexed events per second between the first
// and the last sample within [from, to] that read it.
func indexedRate(samples []lagSample, j int, from, to time.Time) (float64, bool) {
	var first, last *lagSample
	for k := range samples {
		sm := &samples[k]
		if !sm.have[j] || sm.at.Before(from) || sm.at.After(to) {
			continue
		}
		if first == nil {
			first = sm
		}
		last = sm
	}
	if first == nil || last == first || last.indexed[j] < first.indexed[j] {
		return 0, false
	}
	return float64(last.indexed[j]-first.indexed[j]) / last.at.Sub(first.at).Seconds(), true
}

// w9Tally counts the outcomes of an open-loop run.
type w9Tally struct {
	mu         sync.Mutex
	requests   map[string]int64 // by outcome; guarded by mu
	retryAfter map[int]int64    // the Retry-After of refusals, in s; guarded by mu
	acks       []ackRange       // guarded by mu
	// answers counts the refusals and errors by code and message, digits
	// left out ("overloaded: the commit queue holds N requests…"); guarded
	// by mu.
	answers map[string]int64
}

func (t *w9Tally) add(o string, a ingestAnswer, err error, events int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests[o]++
	if o != "accepted" {
		msg := o + " " + a.code + ": " + a.message
		if err != nil {
			msg = o + ": " + err.Error()
		}
		t.answers[withoutDigits(msg)]++
	}
	if refusal(o) {
		t.retryAfter[a.retryAfter]++
	}
	if o == "accepted" {
		t.acks = append(t.acks, ackRange{last: a.seq, n: events})
	}
}

// w9Run offers factor × capacity events/s for W9Duration in batches of
// BatchSize, request i due at start + i/rate (OpenLoop: no coordinated
// omission) and sent to node i mod 3, never retried; then waits until
// every node has indexed what the leader applied and checks that every
// acknowledged event is there.
func (s *Suite) w9Run(ctx context.Context, t target, nodes []*Node, capacity, factor float64) (Workload, error) {
	var before uint64 // the cluster at rest: every node has applied and indexed it
	for _, nd := range nodes {
		st, err := nd.Self(ctx, s.http)
		if err != nil {
			return Workload{}, fmt.Errorf("W9: %w", err)
		}
		before = max(before, st.AppliedSeq)
	}
	bodies := s.w9Bodies()
	ts := spread(t, nodes)
	batch := s.cfg.BatchSize
	d := s.cfg.W9Duration
	reqRate := factor * capacity / float64(batch)
	interval := time.Duration(float64(time.Second) / reqRate)
	tally := &w9Tally{requests: map[string]int64{}, retryAfter: map[int]int64{}, answers: map[string]int64{}}
	var inflight, peak atomic.Int64
	variant := fmt.Sprintf("nodes=%d offered=%gx", len(nodes), factor)
	defer s.profileNodes(ctx, nodes, "W9", variant, time.Now(), d)()
	sampler := s.sampleLag(ctx, nodes, lagSampleEvery)
	start := time.Now()
	offered := NewRecorder(start, s.cfg.Bucket) // by send time; its latency is how late the send was
	refused := NewRecorder(start, s.cfg.Bucket) // the refusals, timed from when they were due
	st, err := OpenLoop(ctx, reqRate, d, w9MaxInFlight, s.cfg.Bucket, func(ctx context.Context, _ int, i int64) (int, int, error) {
		sent := time.Now()
		due := start.Add(time.Duration(i) * interval)
		offered.Record(sent, sent.Sub(due), batch, 0, nil)
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		b := bodies[i%int64(len(bodies))]
		a, err := s.ingest(ctx, ts[i%int64(len(ts))], b)
		o := a.outcome(err)
		tally.add(o, a, err, batch)
		if o == "accepted" {
			return batch, len(b), nil
		}
		if refusal(o) {
			now := time.Now()
			refused.Record(now, now.Sub(due), batch, len(b), nil)
		}
		if err != nil {
			return 0, 0, err
		}
		return 0, 0, fmt.Errorf("%s (%d)", o, a.status)
	})
	if err != nil {
		sampler.stop()
		return Workload{}, fmt.Errorf("W9 %s: %w", variant, err)
	}
	applied, indexed, drained := s.w9Drain(ctx, nodes, 2*time.Minute)
	samples := sampler.stop()
	end := time.Now()

	elapsed := st.Elapsed
	off := offered.Stats(elapsed)
	off.HDR, off.Latency = "", Latency{} // a rate, not a latency: no histogram to draw
	w := Workload{ID: "W9", Variant: variant,
		Parameters: map[string]any{"factor": factor, "capacity_events_per_s": capacity, "offered_events_per_s": factor * capacity,
			"requests_per_s": reqRate, "events_per_request": batch, "duration_s": d.Seconds(), "max_in_flight": w9MaxInFlight,
			"peak_in_flight": peak.Load(), "target": "request i to node i mod " + strconv.Itoa(len(nodes)),
			"on_refusal": "not retried: counted by code", "lag_sample_every_ms": lagSampleEvery.Milliseconds(),
			"lag_source": "the leader's theeye_cluster_index_lag_seconds (ready members only); lag_all_nodes_*: every node's /v1/cluster/self"},
		Figures: latencyFigures(st), Runs: map[string]Stats{"offered": off, "ack": st, "refused": refused.Stats(elapsed)}}
	f := w.Figures
	delete(f, "errors") // the refusals: counted by code below
	f["offered_events_per_s"] = float64(int64(reqRate*d.Seconds())*int64(batch)) / d.Seconds()
	lt := offered.Stats(elapsed).Latency
	f["send_late_p99_ms"], f["send_late_max_ms"] = lt.P99, lt.Max
	// What was sent within the nominal window: less than offered when the
	// generator could not keep up or every slot was taken.
	var sent float64
	for k, v := range off.Series.PerSec {
		if time.Duration(k)*s.cfg.Bucket < d {
			sent += v * s.cfg.Bucket.Seconds()
		}
	}
	f["sent_events_per_s"] = sent / d.Seconds()

	tally.mu.Lock()
	total := int64(0)
	for _, v := range tally.requests {
		total += v
	}
	other := total
	for _, o := range []string{"accepted", "overloaded", "rate_limited", "insufficient_storage"} {
		f[o+"_pct"] = pct(tally.requests[o], total)
		other -= tally.requests[o]
	}
	f["other_answers_pct"] = pct(other, total)
	if len(tally.answers) > 0 {
		w.Parameters["refusals_and_errors"] = maps.Clone(tally.answers)
	}
	for _, o := range slices.Sorted(maps.Keys(tally.requests)) {
		if o != "accepted" && !refusal(o) {
			s.note("W9 %s: %d requests got %s (parameters.refusals_and_errors says which)", variant, tally.requests[o], o)
		}
	}
	if peak.Load() >= w9MaxInFlight {
		s.note("W9 %s: %d requests were in flight at once, the generator's bound: requests then waited for a slot, so less than the nominal rate was offered meanwhile (send_late_* says how late)", variant, peak.Load())
	}
	ra := map[string]int64{}
	var raSum, raN int64
	raMin, raMax := math.MaxInt, 0
	for secs, v := range tally.retryAfter {
		ra[strconv.Itoa(secs)] = v
		raSum += int64(secs) * v
		raN += v
		raMin, raMax = min(raMin, secs), max(raMax, secs)
	}
	if raN > 0 {
		f["retry_after_min_s"], f["retry_after_max_s"], f["retry_after_mean_s"] = float64(raMin), float64(raMax), float64(raSum)/float64(raN)
		w.Parameters["retry_after_counts"] = ra
	}
	acks := slices.Clone(tally.acks)
	tally.mu.Unlock()

	s.w9Lag(&w, nodes, samples, start, end)
	s.w9Lost(&w, nodes, acks, before, applied, indexed)
	if drained >= 0 {
		f["drain_s"] = drained.Seconds()
	}
	return w, nil
}

// withoutDigits writes every run of digits in s as N, so that answers
// that differ only in their figures count as one.
func withoutDigits(s string) string {
	var b strings.Builder
	digits := false
	for _, r := range s {
		if r >= '0' && r <= '9' {
			if !digits {
				b.WriteByte('N')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(r)
	}
	return b.String()
}

func pct(n, total int64) float64 {
	if total == 0 {
		return 0
	}
	return 100 * float64(n) / float64(total)
}

// w9Drain waits (at most timeout) until every node has indexed the most
// any node applied (the leader may have changed), and returns that seq,
// each node's indexed seq and how long it took (-1 when they did not get
// there).
func (s *Suite) w9Drain(ctx context.Context, nodes []*Node, timeout time.Duration) (applied uint64, indexed []uint64, took time.Duration) {
	start := time.Now()
	indexed = make([]uint64, len(nodes))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		done := true
		for i, nd := range nodes {
			if st, err := nd.Self(ctx, s.http); err == nil {
				indexed[i], applied = st.IndexedSeq, max(applied, st.AppliedSeq)
			} else {
				done = false
			}
		}
		for _, idx := range indexed {
			done = done && idx >= applied
		}
		if done {
			return applied, indexed, time.Since(start)
		}
		if time.Since(start) > timeout {
			s.note("W9: the nodes had not indexed seq %d %s after the load (indexed %v)", applied, timeout, indexed)
			return applied, indexed, -1
		}
		select {
		case <-ctx.Done():
			return applied, indexed, -1
		case <-tick.C:
		}
	}
}

// w9Lag adds the lag figures and timelines over [from, to]: the load and
// the drain after it, until every node had indexed all that was applied
// (what readers of the events acknowledged under the load saw). The
// timelines are the leader's gauge, the bench's worst node, and each
// node's.
func (s *Suite) w9Lag(w *Workload, nodes []*Node, samples []lagSample, from, to time.Time) {
	lags := nodeLags(samples)
	gauge := Timeline{Chart: "lag", Unit: "s"}
	all := Timeline{Chart: "lag", Unit: "s"}
	byNode := make([]Timeline, len(nodes))
	var win, winAll []float64
	winNode := make([][]float64, len(nodes))
	var maxEvents float64
	notReady, leaders := 0, map[string]bool{}
	for k, sm := range samples {
		at := sm.at.Sub(from).Seconds()
		in := !sm.at.Before(from) && !sm.at.After(to)
		if v := worst(lags[k]); !math.IsNaN(v) {
			all.AtS, all.Values = append(all.AtS, at), append(all.Values, v)
			if in {
				winAll = append(winAll, v)
			}
		}
		for j, v := range lags[k] {
			if math.IsNaN(v) {
				continue
			}
			byNode[j].AtS, byNode[j].Values = append(byNode[j].AtS, at), append(byNode[j].Values, v)
			if in {
				winNode[j] = append(winNode[j], v)
			}
		}
		if sm.haveGauge {
			gauge.AtS, gauge.Values = append(gauge.AtS, at), append(gauge.Values, sm.gaugeS)
		}
		if !in {
			continue
		}
		if sm.haveGauge {
			win = append(win, sm.gaugeS)
			maxEvents = max(maxEvents, sm.gaugeEvents)
		}
		for j := range sm.have {
			if sm.have[j] && !sm.ready[j] && nodes[j].ID != sm.leader {
				notReady++
			}
		}
		if sm.leader != "" {
			leaders[sm.leader] = true
		}
	}
	w.Timelines = map[string]Timeline{"leader gauge": gauge, "worst node (bench)": all}
	f := w.Figures
	for j, nd := range nodes {
		byNode[j].Chart, byNode[j].Unit = "lag_by_node", "s"
		w.Timelines[nd.ID] = byNode[j]
		if v, ok := quantile(winNode[j], 1); ok {
			f[nd.ID+"_lag_max_s"] = v
		}
	}
	f["lag_samples"] = float64(len(win))
	// Readings due every 250 ms that did not come (a reading that took
	// long delays the next).
	due := int(to.Sub(from)/lagSampleEvery) + 1
	if missed := due - len(win); missed > 0 {
		f["lag_samples_missed"] = float64(missed)
		if missed > due/10 {
			s.note("W9 %s: %d of %d lag readings due during the load and drain did not come (the nodes answered slowly or not at all): the lag percentiles are of the %d that did", w.Variant, missed, due, len(win))
		}
	}
	if v, ok := quantile(win, 0.5); ok {
		f["lag_p50_s"] = v
		f["lag_p99_s"], _ = quantile(win, 0.99)
		f["lag_max_s"], _ = quantile(win, 1)
		f["lag_events_max"] = maxEvents
	} else {
		s.note("W9 %s: the leader's lag gauge could not be read", w.Variant)
	}
	if v, ok := quantile(winAll, 0.99); ok {
		f["lag_all_nodes_p99_s"] = v
		f["lag_all_nodes_max_s"], _ = quantile(winAll, 1)
	}
	f["follower_not_ready_samples"] = float64(notReady)
	if len(leaders) > 1 {
		s.note("W9 %s: the leader changed during the run (%v)", w.Variant, strings.Join(slices.Sorted(maps.Keys(leaders)), ", "))
	}
}

// w9Lost adds the stored-versus-acknowledged figures: lost_events is, over
// the nodes, the most acknowledged events a node has not indexed (0 is
// the goal); stored_unacked_events are events the leader applied that no
// 202 acknowledged (a request that timed out after its commit).
func (s *Suite) w9Lost(w *Workload, nodes []*Node, acks []ackRange, before, applied uint64, indexed []uint64) {
	var accepted int64
	for _, a := range acks {
		accepted += int64(a.n)
	}
	var lost int64
	for i, nd := range nodes {
		l := lostEvents(acks, before, indexed[i])
		if l > 0 {
			s.note("W9 %s: %s lacks %d acknowledged events (indexed %d, acks in (%d, %d])", w.Variant, nd.ID, l, indexed[i], before, applied)
		}
		lost = max(lost, l)
	}
	f := w.Figures
	f["lost_events"] = float64(lost)
	f["accepted_events"] = float64(accepted)
	f["stored_events"] = float64(applied - before)
	if un := int64(applied-before) - accepted; un != 0 {
		f["stored_unacked_events"] = float64(un)
	}
}

// overloadTable renders the W9 runs as their own table (nil when none).
func overloadTable(ws []Workload) string {
	var b strings.Builder
	for _, w := range ws {
		if w.ID != "W9" {
			continue
		}
		f := w.Figures
		if _, ok := f["offered_events_per_s"]; !ok {
			if v, ok := f["indexed_events_per_s"]; ok {
				fmt.Fprintf(&b, "\nW9 capacity (slowest node's indexing rate in a closed-loop burst): %s events/s.\n", FormatNumber(v))
			}
			continue
		}
		if !strings.Contains(b.String(), "| W9 overload |") {
			b.WriteString("\n| W9 overload | offered events/s | accepted events/s | 429 overloaded % | 429 rate_limited % | 507 % | other % | lag p50 s | lag p99 s | lag max s | lag max s (all nodes) | ack p99 ms | Retry-After s | lost |\n")
			b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
		}
		num := func(k string) string {
			if v, ok := f[k]; ok {
				return FormatNumber(v)
			}
			return "–"
		}
		ra := "–"
		if _, ok := f["retry_after_min_s"]; ok {
			ra = num("retry_after_min_s") + "–" + num("retry_after_max_s")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", w.Variant,
			num("offered_events_per_s"), num("events_per_s"), num("overloaded_pct"), num("rate_limited_pct"), num("insufficient_storage_pct"),
			num("other_answers_pct"), num("lag_p50_s"), num("lag_p99_s"), num("lag_max_s"), num("lag_all_nodes_max_s"), num("p99_ms"), ra, num("lost_events"))
	}
	return b.String()
}
