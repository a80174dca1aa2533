package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// lagSample is one reading, every lagSampleEvery during W9, of the
// leader's index-lag gauges and of every node's /v1/cluster/self.
type lagSample struct {
	at time.Time
	// gaugeS and gaugeEvents are the leader's
	// theeye_cluster_index_lag_seconds and _events (haveGauge false when
	// /metrics could not be read).
	gaugeS, gaugeEvents float64
	haveGauge           bool
	// leader is the node that says it leads, "" when none answered so;
	// the gauges are read from it.
	leader string
	// applied is the leader's applied_seq (haveApplied false when it
	// could not be read).
	applied     uint64
	haveApplied bool
	// Per node, in the order of the nodes sampled: applied_seq,
	// indexed_seq, /readyz's verdict, and whether the node answered.
	nodeApplied []uint64
	indexed     []uint64
	ready       []bool
	have        []bool
}

// lagSampleEvery is the flow loop's own interval (api/flow.go): sampling
// faster would only read the same gauge twice.
const lagSampleEvery = 250 * time.Millisecond

// lagSampler reads lagSamples in the background until stopped.
type lagSampler struct {
	s      *Suite
	nodes  []*Node
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	samples []lagSample // guarded by mu
}

// sampleLag starts reading the lag of nodes every interval; stop ends
// it.
func (s *Suite) sampleLag(ctx context.Context, nodes []*Node, every time.Duration) *lagSampler {
	ctx, cancel := context.WithCancel(ctx)
	l := &lagSampler{s: s, nodes: nodes, cancel: cancel, done: make(chan struct{})}
	go l.run(ctx, every)
	return l
}

func (l *lagSampler) run(ctx context.Context, every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sm := l.read(ctx)
		if ctx.Err() != nil {
			return // a reading cut short by stop is not a reading
		}
		l.mu.Lock()
		l.samples = append(l.samples, sm)
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stop ends the sampling and returns every sample, oldest first.
func (l *lagSampler) stop() []lagSample {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.samples)
}

// lagReadTimeout bounds one sample's reads. An overloaded node can take
// over a second to answer, and a sample missed then is one of the worst:
// better late than not at all.
const lagReadTimeout = 3 * time.Second

// read takes one sample: every node's /v1/cluster/self at once, then the
// /metrics of the node that says it leads (the gauges are 0 on the
// others). The sample is dated when the last status came back, so the
// bench's own lag errs high, never low, by how long that took.
func (l *lagSampler) read(ctx context.Context) lagSample {
	ctx, cancel := context.WithTimeout(ctx, lagReadTimeout)
	defer cancel()
	n := len(l.nodes)
	sm := lagSample{nodeApplied: make([]uint64, n), indexed: make([]uint64, n), ready: make([]bool, n), have: make([]bool, n)}
	leader := -1
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, nd := range l.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := nd.Self(ctx, l.s.http)
			if err != nil {
				return
			}
			sm.nodeApplied[i], sm.indexed[i], sm.ready[i], sm.have[i] = st.AppliedSeq, st.IndexedSeq, st.Ready, true
			if strings.EqualFold(st.State, "leader") {
				mu.Lock()
				leader = i
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sm.at = time.Now()
	if leader < 0 {
		return sm
	}
	sm.leader, sm.applied, sm.haveApplied = l.nodes[leader].ID, sm.nodeApplied[leader], true
	body, err := l.s.metrics(ctx, l.nodes[leader])
	if err != nil {
		return sm
	}
	s, ok1 := promGauge(body, "theeye_cluster_index_lag_seconds")
	e, ok2 := promGauge(body, "theeye_cluster_index_lag_events")
	sm.gaugeS, sm.gaugeEvents, sm.haveGauge = s, e, ok1 && ok2
	return sm
}

// metrics reads n's /metrics (it needs no key).
func (s *Suite) metrics(ctx context.Context, n *Node) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", n.ID, err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", n.ID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", n.ID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics of %s: %s", n.ID, resp.Status)
	}
	return b, nil
}

// promGauge reads the value of an unlabelled metric from Prometheus's
// text format.
func promGauge(body []byte, name string) (float64, bool) {
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || rest[0] != ' ' {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseFloat(string(f[0]), 64)
		return v, err == nil
	}
	return 0, false
}

// nodeLags is, per sample and per node, the bench's own index lag in
// seconds: how long ago the leader's applied seq, as sampled, first
// passed that node's indexed seq. It is the leader's own method
// (api/flow.go) on the bench's samples, so it reads low by up to one
// interval, but it counts every node that answered, ready or not (the
// leader leaves out a follower while it is not ready, or while it does
// not answer within a second). NaN where the node was not read.
func nodeLags(samples []lagSample) [][]float64 {
	type passed struct {
		seq uint64
		at  time.Time
	}
	var hist []passed // the leader's applied seq, when it grew
	out := make([][]float64, len(samples))
	for k, sm := range samples {
		if sm.haveApplied && (len(hist) == 0 || sm.applied > hist[len(hist)-1].seq) {
			hist = append(hist, passed{sm.applied, sm.at})
		}
		out[k] = make([]float64, len(sm.indexed))
		for j, idx := range sm.indexed {
			out[k][j] = math.NaN()
			if !sm.have[j] || len(hist) == 0 {
				continue
			}
			out[k][j] = 0
			for _, h := range hist {
				if h.seq > idx {
					out[k][j] = sm.at.Sub(h.at).Seconds()
					break
				}
			}
		}
	}
	return out
}

// worst is the largest of vs that is not NaN, NaN when none is.
func worst(vs []float64) float64 {
	w := math.NaN()
	for _, v := range vs {
		if !math.IsNaN(v) && (math.IsNaN(w) || v > w) {
			w = v
		}
	}
	return w
}

// quantile is the q-quantile (0..1) of vs by the nearest-rank method
// (NaNs left out); ok is false when there is no value.
func quantile(vs []float64, q float64) (v float64, ok bool) {
	var s []float64
	for _, v := range vs {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return 0, false
	}
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)], true
}

// ackRange is what one 202 acknowledged: the events last-n+1 … last.
type ackRange struct {
	last uint64
	n    int
}

// lostEvents counts the acknowledged events that a node which has
// indexed up to indexed does not hold, when before was the last seq
// before the run: events of an ack outside (before, indexed], of an ack
// with no seq, and of acks that overlap (two acks for one stored event).
func lostEvents(acks []ackRange, before, indexed uint64) int64 {
	s := slices.Clone(acks)
	slices.SortFunc(s, func(a, b ackRange) int { return cmp.Compare(a.last, b.last) })
	var lost int64
	var prev uint64 // the last seq of the previous ack
	for _, a := range s {
		if a.last == 0 || uint64(a.n) > a.last {
			lost += int64(a.n)
			continue
		}
		first := a.last - uint64(a.n) + 1
		for seq := first; seq <= a.last; seq++ { // at most a batch per ack
			if seq <= before || seq > indexed || seq <= prev {
				lost++
			}
		}
		prev = max(prev, a.last)
	}
	return lost
}
