package api

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/theeye/theeye"
)

// Flow control (API.md, "Limits and flow control"): the leader says "slow
// down" before anything breaks. It refuses writes with 507
// insufficient_storage while its disk, or the disks of a majority of the
// members, are below --min-free-disk, and refuses ingest with 429
// overloaded while the leader's or a ready follower's index is more than MaxIndexLag events
// or MaxIndexDelay behind what the leader applied, or while the commit
// queue is deep. What it decides on is sampled by a loop every
// flowInterval, never per request: a request reads the last decision.
//
// The index delay of a member is how long ago the leader applied the
// first event that member has not indexed yet: the leader keeps the time
// at which its applied seq passed each sample, so the delay of every
// member is known to within one interval, from the seqs members report in
// their peer status.

// flowInterval is how often the flow loop samples the node, its peers and
// the disk.
const flowInterval = 250 * time.Millisecond

// appliedSample is the leader's applied seq at a time.
type appliedSample struct {
	seq uint64
	at  time.Time
}

// maxSamples bounds the applied-seq history (at flowInterval: 2 minutes;
// a member further behind than that is simply "2 minutes or more").
const maxSamples = int(2 * time.Minute / flowInterval)

// flow is the leader's view of the cluster's capacity. Its decision fields
// are written by the loop and read by requests.
type flow struct {
	s *Server

	mu       sync.Mutex
	samples  []appliedSample // oldest first; guarded by mu
	rate     float64         // this node's indexing rate, events/s (moving average); guarded by mu
	lastIdx  appliedSample   // this node's indexed seq at the previous sample; guarded by mu
	peers    []selfStatus    // the members' last reports (this node included); guarded by mu
	overload *theeye.Error   // the current 429 overloaded, nil when none; guarded by mu
	full     *theeye.Error   // the current 507, nil when none; guarded by mu
	lag      lagView         // for metrics and /status; guarded by mu
	// budget is how many events ingest may still admit until the next
	// sample (-1: no bound); decide sets it, take spends it.
	budget atomic.Int64

	pollMu   sync.Mutex
	readings map[string]*peerReading // by HTTP address; guarded by pollMu
}

// lagView is the worst index lag among the ready members.
type lagView struct {
	events  uint64
	delay   time.Duration // measured: how long ago the oldest event not indexed was applied
	wait    time.Duration // projected: what an event admitted now would wait (decide)
	node    string
	rate    float64
	samples int
}

func newFlow(s *Server) *flow {
	f := &flow{s: s}
	f.budget.Store(-1) // no bound until the first sample measures the index
	return f
}

// run samples until ctx ends.
func (f *flow) run(ctx context.Context) {
	t := time.NewTicker(flowInterval)
	defer t.Stop()
	for {
		f.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample takes one round of readings and recomputes the decisions.
func (f *flow) sample(ctx context.Context) {
	s := f.s
	now := s.cfg.Now()
	applied, indexed := s.cfg.Node.AppliedSeq(), s.cfg.Index.IndexedSeq()
	s.disk.refresh(now)
	// What /readyz would answer now (after the disk reading it depends
	// on), for alerting on a node that stays unready.
	if s.ready() == nil {
		s.m.ready.Set(1)
	} else {
		s.m.ready.Set(0)
	}
	var peers []selfStatus
	if s.cfg.Node.IsLeader() {
		peers = s.memberStatuses(ctx)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.samples); n == 0 || f.samples[n-1].seq != applied {
		f.samples = append(f.samples, appliedSample{seq: applied, at: now})
		if len(f.samples) > maxSamples {
			f.samples = append(f.samples[:0], f.samples[len(f.samples)-maxSamples:]...)
		}
	}
	if !f.lastIdx.at.IsZero() && indexed >= f.lastIdx.seq {
		if dt := now.Sub(f.lastIdx.at).Seconds(); dt > 0 {
			inst := float64(indexed-f.lastIdx.seq) / dt
			// An average over about 5 s of samples, kept from idle
			// stretches: while nothing is to be indexed the rate says
			// nothing about capacity.
			if f.rate == 0 {
				f.rate = inst // the first reading: nothing to average with
			} else if indexed < applied || inst > f.rate {
				f.rate += (inst - f.rate) * min(1, dt/5)
			}
		}
	}
	f.lastIdx = appliedSample{seq: indexed, at: now}
	f.peers = peers
	f.decide(now, applied)
}

// peerReading is the last status a member reported, and when.
type peerReading struct {
	st      selfStatus
	at      time.Time
	polling bool // a poll of this member is in flight
}

// peerStale is how old a member's last report may be before the member
// counts as unreachable (several flow intervals: one slow answer does not
// flap it, a member gone for good stops holding the cluster back soon).
const peerStale = 8 * flowInterval

// memberStatuses returns this node's status and each member's last
// report. It never waits on a member: each is polled in the background
// (one poll in flight per member), and the sample reads the last answer,
// so a slow or dead peer delays no decision. A member with no report
// newer than peerStale is "unreachable".
func (s *Server) memberStatuses(ctx context.Context) []selfStatus {
	st, err := s.cfg.Node.Stats()
	if err != nil {
		return []selfStatus{s.self()}
	}
	f := s.flow
	now := s.cfg.Now()
	out := make([]selfStatus, len(st.Servers))
	f.pollMu.Lock()
	defer f.pollMu.Unlock()
	if f.readings == nil {
		f.readings = make(map[string]*peerReading)
	}
	for i, sv := range st.Servers {
		if sv.ID == s.cfg.Node.ID() {
			out[i] = s.self()
			continue
		}
		out[i] = selfStatus{ID: sv.ID, State: "unreachable"}
		if sv.HTTPAddr == "" {
			continue
		}
		rd := f.readings[sv.HTTPAddr]
		if rd == nil {
			rd = &peerReading{}
			f.readings[sv.HTTPAddr] = rd
		}
		if !rd.at.IsZero() && now.Sub(rd.at) <= peerStale && rd.st.ID == sv.ID {
			out[i] = rd.st
		}
		if !rd.polling {
			rd.polling = true
			go f.poll(ctx, sv.HTTPAddr, rd)
		}
	}
	return out
}

// poll asks one member for its status and keeps the answer.
func (f *flow) poll(ctx context.Context, addr string, rd *peerReading) {
	ps, err := f.s.peerStatus(ctx, addr)
	f.pollMu.Lock()
	defer f.pollMu.Unlock()
	rd.polling = false
	if err == nil {
		rd.st, rd.at = ps, f.s.cfg.Now()
	}
}

// delayOf is how long ago the leader applied the first seq after indexed.
// mu is held.
func (f *flow) delayOf(now time.Time, indexed, applied uint64) time.Duration {
	if indexed >= applied || len(f.samples) == 0 {
		return 0
	}
	// The first sample whose seq passed indexed: seq indexed+1 was applied
	// by then.
	for _, sm := range f.samples {
		if sm.seq > indexed {
			return now.Sub(sm.at)
		}
	}
	return 0
}

// decide recomputes the 429 and 507 decisions. mu is held.
func (f *flow) decide(now time.Time, applied uint64) {
	s := f.s
	f.lag = lagView{rate: f.rate, samples: len(f.samples)}
	low, members := 0, 0
	for _, p := range f.peers {
		if p.State == "unreachable" {
			continue
		}
		members++
		if p.DiskLow {
			low++
		}
		// A follower that is not ready (catching up after a restart,
		// rebuilding its index, or broken) does not hold the cluster
		// back: it catches up on its own. The leader always counts: its
		// lag is the cluster's.
		if !p.Ready && p.ID != s.cfg.Node.ID() {
			continue
		}
		lag := uint64(0)
		if applied > p.IndexedSeq {
			lag = applied - p.IndexedSeq
		}
		d := f.delayOf(now, p.IndexedSeq, applied)
		if d > f.lag.delay || lag > f.lag.events {
			f.lag.events, f.lag.delay, f.lag.node = max(lag, f.lag.events), max(d, f.lag.delay), p.ID
		}
	}
	if f.peers == nil { // not the leader: only the own disk counts
		members, low = 1, 0
		if s.disk.isLow() {
			low = 1
		}
	}
	s.m.clusterLagEvents.Set(float64(f.lag.events))
	s.m.clusterLagSeconds.Set(f.lag.delay.Seconds())

	f.full = nil
	if s.disk.isLow() || low > members/2 {
		f.full = theeye.Errorf(theeye.EInsufficientStorage,
			"the cluster is short of disk: %d of %d members are below their free-space watermark (--min-free-disk); writes resume by themselves once space is freed", max(low, 1), max(members, 1)).
			WithDetail(retryAfterDetail, 10)
	}

	f.overload = nil
	queue := s.cfg.Node.QueueDepth()
	// Events committed to nobody yet are lag the index cannot see.
	f.lag.events += uint64(queue)
	// What an event admitted now would wait before the slowest ready
	// member indexes it: the delay measured, or everything ahead of it
	// at the indexing rate, the longer.
	f.lag.wait = f.lag.delay
	if f.rate > 0 {
		f.lag.wait = max(f.lag.wait, time.Duration(float64(f.lag.events)/f.rate*float64(time.Second)))
		// Until the next sample, admit what the index can take within
		// MaxIndexDelay (with what it indexes meanwhile): a burst
		// between two samples cannot overshoot the limit.
		room := s.cfg.MaxIndexDelay - f.lag.wait + flowInterval
		budget := max(0, int64(room.Seconds()*f.rate))
		if f.lag.events == 0 {
			// Nothing is behind. The rate may then say only what was
			// offered lately (an index that keeps up with a trickle
			// measures the trickle, not its capacity), and a budget
			// under one request would refuse it for good: nothing more
			// would be indexed to measure a better rate. Admit at least
			// one largest batch; the next sample sees what it cost.
			budget = max(budget, int64(s.cfg.MaxBatchEvents))
		}
		f.budget.Store(budget)
	} else {
		f.budget.Store(-1) // nothing measured yet: the queue bound holds
	}
	switch {
	case f.lag.events > s.cfg.MaxIndexLag || f.lag.wait > s.cfg.MaxIndexDelay:
		secs := retryAfter(f.lag, s.cfg.MaxIndexLag, s.cfg.MaxIndexDelay)
		f.overload = theeye.Errorf(theeye.EOverloaded,
			"the cluster is indexing behind what it acknowledged (node %s: %d events, %s behind; limits %d events, %s); retry in %d s",
			f.lag.node, f.lag.events, f.lag.wait.Round(time.Millisecond), s.cfg.MaxIndexLag, s.cfg.MaxIndexDelay, secs).
			WithDetail(retryAfterDetail, secs).WithDetail("lag_events", f.lag.events).WithDetail("lag_seconds", f.lag.wait.Seconds())
	case queue > s.cfg.MaxCommitQueue:
		secs := 1
		if f.rate > 0 {
			secs = min(max(int(math.Ceil(float64(queue-s.cfg.MaxCommitQueue/2)/f.rate)), 1), maxRetryAfter)
		}
		f.overload = theeye.Errorf(theeye.EOverloaded, "%d events wait to be committed (limit %d); retry in %d s", queue, s.cfg.MaxCommitQueue, secs).
			WithDetail(retryAfterDetail, secs)
	}
}

// take admits n events against the budget of the last sample, or returns
// the 429 that refuses them.
func (f *flow) take(n int) error {
	for {
		b := f.budget.Load()
		if b < 0 {
			return nil
		}
		if b < int64(n) {
			return theeye.Errorf(theeye.EOverloaded,
				"the cluster has admitted all it can index within %s for now (max index delay); retry in 1 s", f.s.cfg.MaxIndexDelay).
				WithDetail(retryAfterDetail, 1)
		}
		if f.budget.CompareAndSwap(b, b-int64(n)) {
			return nil
		}
	}
}

// maxRetryAfter caps the Retry-After of an overload: past it, clients
// would come back long after the cluster has caught up.
const maxRetryAfter = 10

// retryAfter is how long the cluster needs to get back to half its limits
// when nothing more comes: the delay over half maxDelay (the delay is the
// measure that holds whichever node is behind), or the events over half
// maxLag at the indexing rate; 1 to maxRetryAfter seconds.
func retryAfter(l lagView, maxLag uint64, maxDelay time.Duration) int {
	secs := (l.wait - maxDelay/2).Seconds()
	if l.events > maxLag && l.rate > 0 {
		secs = max(secs, float64(l.events-maxLag/2)/l.rate)
	}
	return min(max(int(math.Ceil(secs)), 1), maxRetryAfter)
}

// admitWrite returns the 507 that refuses writes now, or nil.
func (f *flow) admitWrite() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full != nil {
		return f.full
	}
	return nil
}

// admitIngest returns the 507 or 429 that refuses ingest now, or nil.
func (f *flow) admitIngest() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.full != nil:
		return f.full
	case f.overload != nil:
		return f.overload
	}
	return nil
}

// lagNow returns the worst lag of the last sample.
func (f *flow) lagNow() lagView {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lag
}

// String is for logs.
func (l lagView) String() string {
	return fmt.Sprintf("%d events, %s (node %s, indexing %.0f/s)", l.events, l.delay.Round(time.Millisecond), l.node, l.rate)
}
