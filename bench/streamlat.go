package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// streamBatch is how many events each request of W8's stream load carries.
const streamBatch = 10

// w8Stream is W8's stream half (issue 15): the delivery latency of
// GET /v1/stream, from the ack of an event to its arrival at a streaming
// reader, at W3's rate (5,000 events/s) in an open loop of NDJSON POSTs of
// streamBatch events to the leader (500 requests/s: W3 measures what
// single-event POSTs cost; this measures the stream), with the reader on a
// follower. Every event carries an
// id of its own (w8-<run>-<i>) by which its ack and its arrival are
// matched; the latencies go to an HDR histogram. The reader follows the
// stream from the seq the cluster was at (every node had indexed it), so
// it sees every event of the load.
func (s *Suite) w8Stream(ctx context.Context, t target, nodes []*Node) (Workload, error) {
	rate, d := s.cfg.W3Rate, s.cfg.W8Duration
	n := int(rate * d.Seconds())
	prefix := "w8-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	gen := w2Gen()
	ackAt, recvAt := make([]atomic.Int64, n), make([]atomic.Int64, n)
	reader := nodes[len(nodes)-1]
	st0, err := nodes[0].Self(ctx, s.http)
	if err != nil {
		return Workload{}, fmt.Errorf("W8 stream: %w", err)
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var received atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		readErr <- s.readStream(rctx, target{url: reader.URL, key: t.key}, st0.AppliedSeq, []byte(prefix), func(i int) {
			if i < n && recvAt[i].CompareAndSwap(0, time.Now().UnixNano()) {
				received.Add(1)
			}
		})
	}()
	variant := fmt.Sprintf("stream nodes=%d rate=%.0f", len(nodes), rate)
	defer s.profileNodes(ctx, nodes, "W8", variant, time.Now(), d)()
	var acked atomic.Int64
	per := streamBatch
	ack, err := OpenLoop(ctx, rate/float64(per), d, 2048, s.cfg.Bucket, func(ctx context.Context, _ int, r int64) (int, int, error) {
		var b []byte
		for i := r * int64(per); i < (r+1)*int64(per); i++ {
			b = append(b, `{"id":"`+prefix+strconv.FormatInt(i, 10)+`",`...)
			b = append(b, gen.Append(nil, i)[1:]...) // the event without its '{'
			b = append(b, '\n')
		}
		if _, err := s.post(ctx, t, "application/x-ndjson", b); err != nil {
			return 0, 0, err
		}
		now := time.Now().UnixNano()
		for i := r * int64(per); i < (r+1)*int64(per) && i < int64(n); i++ {
			ackAt[i].Store(now)
			acked.Add(1)
		}
		return per, len(b), nil
	})
	if err != nil {
		return Workload{}, fmt.Errorf("W8 stream: %w", err)
	}
	s.addRaw(t.name, ack.Bytes)
	// Until the reader has every acknowledged event (or 30 s).
	_ = theeyetest.PollContext(ctx, 30*time.Second, func() error {
		select {
		case err := <-readErr:
			return theeyetest.Stop(fmt.Errorf("the stream ended: %w", err))
		default:
		}
		if missing := acked.Load() - matched(ackAt, recvAt); missing > 0 {
			return fmt.Errorf("%d acknowledged events not received", missing)
		}
		return nil
	})
	stop()
	lat := NewRecorder(time.Now(), s.cfg.Bucket)
	var early, missing int64
	for i := range ackAt {
		a, r := ackAt[i].Load(), recvAt[i].Load()
		switch {
		case a == 0:
		case r == 0:
			missing++
		default:
			if r < a { // the stream was faster than the ack's way back
				early++
				r = a
			}
			lat.Record(time.Unix(0, r), time.Duration(r-a), 1, 0, nil)
		}
	}
	ls := lat.Stats(d)
	w := Workload{ID: "W8", Variant: variant,
		Parameters: map[string]any{"rate_per_s": rate, "events_per_request": per, "duration_s": d.Seconds(), "writer": "leader " + nodes[0].ID, "reader": "follower " + reader.ID,
			"latency":  "ack of the event's POST (as the client sees it) → the event's data line read by a GET /v1/stream reader, matched by the event's id",
			"from_seq": st0.AppliedSeq},
		Figures: latencyFigures(ls), Runs: map[string]Stats{"stream delivery": ls, "ack": ack}}
	delete(w.Figures, "events_per_s")
	w.Figures["acked_events_per_s"] = ack.EventsPerSec()
	w.Figures["ack_p99_ms"] = ack.Latency.P99
	w.Figures["delivered_events"] = float64(ls.Events)
	w.Figures["missing_events"] = float64(missing)
	w.Figures["received_before_ack"] = float64(early)
	if missing > 0 {
		s.note("W8 stream: %d acknowledged events had not reached the reader 30 s after the load", missing)
	}
	if ack.Errors > 0 {
		s.note("W8 stream: %d POSTs failed, last: %s", ack.Errors, ack.LastErr)
	}
	return w, nil
}

// matched counts the events both acknowledged and received.
func matched(ackAt, recvAt []atomic.Int64) int64 {
	var m int64
	for i := range ackAt {
		if ackAt[i].Load() != 0 && recvAt[i].Load() != 0 {
			m++
		}
	}
	return m
}

// readStream reads GET /v1/stream from after seq until ctx ends, and calls
// got with i for every event whose id is prefix+i.
func (s *Suite) readStream(ctx context.Context, t target, seq uint64, prefix []byte, got func(i int)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url+"/v1/stream?from_seq="+strconv.FormatUint(seq, 10), nil)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+t.key)
	req.Header.Set("Accept", "text/event-stream")
	// Not the suite's client: a stream's headers may wait for its first event.
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stream: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 256<<10), 1<<20)
	for sc.Scan() {
		if i, ok := streamEventIndex(sc.Bytes(), prefix); ok {
			got(i)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("stream: %w", err)
	}
	return nil
}

// streamEventIndex reads i from a "data: {...}" line of the stream whose
// event has the id prefix+i.
func streamEventIndex(line, prefix []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return 0, false
	}
	k := bytes.Index(rest, []byte(`"id":"`))
	if k < 0 {
		return 0, false
	}
	rest, ok = bytes.CutPrefix(rest[k+len(`"id":"`):], prefix)
	if !ok {
		return 0, false
	}
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 || j >= len(rest) || rest[j] != '"' {
		return 0, false
	}
	i, err := strconv.Atoi(string(rest[:j]))
	return i, err == nil
}
