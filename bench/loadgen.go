package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Op is one request of a workload: it returns how many events it carried
// (or read) and how many bytes, or an error.
type Op func(ctx context.Context, worker int, i int64) (events, bytes int, err error)

// Recorder collects latencies in an HDR histogram (microseconds, 1 µs to
// 5 min, 3 significant figures) and completions per time bucket.
type Recorder struct {
	mu      sync.Mutex
	hist    *hdrhistogram.Histogram
	start   time.Time
	bucket  time.Duration
	events  []int64 // events completed per bucket
	ops     int64
	evTotal int64
	bytes   int64
	errs    int64
	lastErr error
}

// NewRecorder starts a recorder whose time series counts per bucket from start.
func NewRecorder(start time.Time, bucket time.Duration) *Recorder {
	return &Recorder{hist: hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3), start: start, bucket: bucket}
}

// Record notes one completed operation.
func (r *Recorder) Record(at time.Time, lat time.Duration, events, bytes int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs++
		r.lastErr = err
		return
	}
	us := lat.Microseconds()
	if us < 1 {
		us = 1
	}
	_ = r.hist.RecordValue(us) // values above the highest trackable are dropped
	r.ops++
	r.evTotal += int64(events)
	r.bytes += int64(bytes)
	if b := int(at.Sub(r.start) / r.bucket); b >= 0 {
		for len(r.events) <= b {
			r.events = append(r.events, 0)
		}
		r.events[b] += int64(events)
	}
}

// Stats is what a run of a workload measured.
type Stats struct {
	Ops     int64         `json:"ops"`
	Events  int64         `json:"events"`
	Bytes   int64         `json:"bytes"`
	Errors  int64         `json:"errors"`
	LastErr string        `json:"last_error,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Latency Latency       `json:"latency"`
	Series  Series        `json:"series"`
	// HDR is the latency histogram (µs), V2 compressed and base64 encoded
	// as HdrHistogram's tools read it.
	HDR string `json:"hdr,omitempty"`
}

// Latency is a summary of a histogram, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Series is a throughput time series: events completed per bucket.
type Series struct {
	BucketMS int64     `json:"bucket_ms"`
	PerSec   []float64 `json:"events_per_s"`
}

// Stats returns the figures recorded so far, over elapsed.
func (r *Recorder) Stats(elapsed time.Duration) Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Ops: r.ops, Events: r.evTotal, Bytes: r.bytes, Errors: r.errs, Elapsed: elapsed,
		Latency: Summarize(r.hist)}
	if enc, err := r.hist.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err == nil {
		s.HDR = string(enc)
	}
	if r.lastErr != nil {
		s.LastErr = r.lastErr.Error()
	}
	s.Series.BucketMS = r.bucket.Milliseconds()
	n := int((elapsed + r.bucket - 1) / r.bucket)
	for i := 0; i < n && i < len(r.events); i++ {
		s.Series.PerSec = append(s.Series.PerSec, float64(r.events[i])/r.bucket.Seconds())
	}
	return s
}

// Hist decodes the latency histogram of s (nil when there is none).
func (s Stats) Hist() *hdrhistogram.Histogram {
	if s.HDR == "" {
		return nil
	}
	h, err := hdrhistogram.Decode([]byte(s.HDR))
	if err != nil {
		return nil
	}
	return h
}

// EventsPerSec is the throughput over the whole run.
func (s Stats) EventsPerSec() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Events) / s.Elapsed.Seconds()
}

// Summarize reads the usual percentiles of h (recorded in µs) in ms.
func Summarize(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1000,
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

// ClosedLoop runs op from clients goroutines back to back for d after a
// warm-up (not recorded), and returns what it measured.
func ClosedLoop(ctx context.Context, clients int, warmup, d time.Duration, bucket time.Duration, op Op) (Stats, error) {
	if clients <= 0 || d <= 0 {
		return Stats{}, errors.New("closed loop: clients and duration must be positive")
	}
	begin := time.Now()
	start := begin.Add(warmup)
	end := start.Add(d)
	rec := NewRecorder(start, bucket)
	ctx, cancel := context.WithDeadline(ctx, end.Add(30*time.Second))
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				ev, by, err := op(ctx, w, next.Add(1)-1)
				t1 := time.Now()
				if t0.Before(start) {
					continue
				}
				if err != nil && ctx.Err() != nil {
					return
				}
				rec.Record(t1, t1.Sub(t0), ev, by, err)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && time.Now().Before(end) {
		return rec.Stats(time.Since(start)), fmt.Errorf("closed loop: %w", err)
	}
	return rec.Stats(d), nil
}

// OpenLoop issues op at a fixed arrival rate (per second) for d: the i-th
// request is due at start + i/rate whether or not earlier ones have
// answered, and its latency is measured from when it was due, so a stall
// shows in the percentiles (no coordinated omission). At most maxInFlight
// requests run at once; a request waiting for a slot is still timed from
// its due time. It returns the stats and how many requests were issued.
func OpenLoop(ctx context.Context, rate float64, d time.Duration, maxInFlight int, bucket time.Duration, op Op) (Stats, error) {
	if rate <= 0 || d <= 0 || maxInFlight <= 0 {
		return Stats{}, errors.New("open loop: rate, duration and max in flight must be positive")
	}
	n := int64(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	rec := NewRecorder(start, bucket)
	ctx, cancel := context.WithDeadline(ctx, start.Add(d+60*time.Second))
	defer cancel()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	var i int64
	for i = 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				wg.Wait()
				return rec.Stats(time.Since(start)), fmt.Errorf("open loop: %w", ctx.Err())
			}
		}
		wg.Add(1)
		go func(i int64, due time.Time) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				rec.Record(time.Now(), 0, 0, 0, ctx.Err())
				return
			}
			defer func() { <-sem }()
			ev, by, err := op(ctx, int(i%int64(maxInFlight)), i)
			t1 := time.Now()
			rec.Record(t1, t1.Sub(due), ev, by, err)
		}(i, due)
	}
	wg.Wait()
	// Over the time until the last answer: a backlog lowers the rate.
	return rec.Stats(max(d, time.Since(start))), nil
}
