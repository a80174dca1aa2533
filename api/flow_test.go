package api

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/raftnode"
)

// flowNode is a leader alone in its cluster whose applied seq and queue a
// test sets.
type flowNode struct {
	keyNode
	applied uint64
	queue   int
}

func (n *flowNode) Leader() (string, string) { return "n1", "http://n1" }
func (n *flowNode) AppliedSeq() uint64       { return n.applied }
func (n *flowNode) QueueDepth() int          { return n.queue }
func (n *flowNode) FirstSeq() uint64         { return 1 }
func (n *flowNode) State() string            { return "Leader" }
func (n *flowNode) Healthy() error           { return nil }
func (n *flowNode) CatchingUp() error        { return nil }
func (n *flowNode) Stats() (raftnode.Stats, error) {
	return raftnode.Stats{Servers: []raftnode.ServerInfo{{ID: "n1"}}}, nil
}

type flowIndex struct {
	fakeIndex
	indexed uint64
}

func (x *flowIndex) IndexedSeq() uint64 { return x.indexed }

// TestOverload: ingest is refused with 429 overloaded, with a Retry-After
// from the lag and the indexing rate, while the index is more than
// MaxIndexDelay (or MaxIndexLag events) behind; admitted again once it
// catches up.
func TestOverload(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	n, ix := &flowNode{applied: 0}, &flowIndex{}
	s := New(Config{Node: n, Index: ix, Now: clk.now, MaxIndexLag: 100_000, MaxIndexDelay: 2 * time.Second, MaxCommitQueue: 4096})
	step := func(d time.Duration, applied, indexed uint64) error {
		clk.t = clk.t.Add(d)
		n.applied, ix.indexed = applied, indexed
		s.flow.sample(context.Background())
		return s.flow.admitIngest()
	}
	if err := step(0, 0, 0); err != nil {
		t.Fatalf("idle: %v", err)
	}
	if err := step(time.Second, 10_000, 0); err != nil {
		t.Fatalf("10k events behind for an instant: %v", err)
	}
	if err := step(time.Second, 10_000, 5_000); err != nil {
		t.Fatalf("1 s behind: %v", err)
	}
	err := step(1500*time.Millisecond, 10_000, 6_000)
	e, ok := theeye.AsError(err)
	if !ok || e.Code != theeye.EOverloaded {
		t.Fatalf("2.5 s behind: %v, want overloaded", err)
	}
	// Retry-After is the time back to half the delay limit when nothing
	// more comes: the delay less 1 s, rounded up.
	lag := s.flow.lagNow()
	if want := int(math.Ceil((lag.wait - time.Second).Seconds())); lag.wait <= 2*time.Second || e.Details[retryAfterDetail].(int) != want {
		t.Fatalf("Retry-After %v s at %s behind, want %d (the delay over half the limit)", e.Details[retryAfterDetail], lag.wait, want)
	}
	rec := httptest.NewRecorder()
	s.writeError(rec, httptest.NewRequest("POST", "/v1/events", nil), err)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"overloaded"`) {
		t.Fatalf("the answer: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if err := step(time.Second, 10_000, 10_000); err != nil {
		t.Fatalf("caught up: %v", err)
	}
	if err := step(time.Second, 300_000, 10_000); theeye.ErrorCode(err) != theeye.EOverloaded {
		t.Fatalf("290,000 events behind, over MaxIndexLag: %v", err)
	}
	n.applied, ix.indexed, n.queue = 300_000, 300_000, 5000
	if err := step(time.Second, 300_000, 300_000); theeye.ErrorCode(err) != theeye.EOverloaded {
		t.Fatalf("a commit queue of 5000 events: %v", err)
	}
}

// TestAdmissionBudget: between two samples the leader admits no more
// events than its index takes within MaxIndexDelay, so a burst cannot
// overshoot the limit before the next sample sees it; each sample
// renews the budget.
func TestAdmissionBudget(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	n, ix := &flowNode{}, &flowIndex{}
	s := New(Config{Node: n, Index: ix, Now: clk.now, MaxIndexDelay: 2 * time.Second})
	if err := s.flow.take(1_000_000); err != nil {
		t.Fatalf("nothing measured yet: %v, want no budget", err)
	}
	step := func(applied, indexed uint64) {
		clk.t = clk.t.Add(time.Second)
		n.applied, ix.indexed = applied, indexed
		s.flow.sample(context.Background())
	}
	step(0, 0)
	step(10_000, 10_000) // 10,000 events/s, caught up
	// Nothing behind: 2 s of indexing plus the interval's, 22,500 events.
	lag := s.flow.lagNow()
	budget := int((2*time.Second + flowInterval).Seconds() * lag.rate)
	if lag.rate != 10_000 || lag.wait != 0 {
		t.Fatalf("after one second at 10,000 events/s: %+v", lag)
	}
	for taken := 0; taken+100 <= budget; taken += 100 {
		if err := s.flow.take(100); err != nil {
			t.Fatalf("after %d of a %d-event budget: %v", taken, budget, err)
		}
	}
	err := s.flow.take(100)
	if e, ok := theeye.AsError(err); !ok || e.Code != theeye.EOverloaded || e.Details[retryAfterDetail] != 1 {
		t.Fatalf("over the budget: %v, want overloaded with Retry-After 1", err)
	}
	// The next sample: 10,000 of them indexed, 12,500 still ahead (1.25 s
	// at the rate): room for 1 s more.
	n.queue = 0
	step(10_000+uint64(budget/100*100), 20_000)
	lag = s.flow.lagNow()
	if err := s.flow.take(100); err != nil || lag.wait != 1250*time.Millisecond {
		t.Fatalf("renewed budget at %+v: %v", lag, err)
	}
	if got, want := s.flow.budget.Load(), int64(10_000-100); got != want {
		t.Fatalf("budget %d after taking 100, want %d", got, want)
	}
}

// TestAdmissionBudgetAfterTrickle: an index that kept up with a trickle
// measured the trickle as its rate; once caught up, a batch far above
// rate × delay must still be admitted (eyectl send refused for minutes
// with a budget of 22 events against a batch of 40 before this).
func TestAdmissionBudgetAfterTrickle(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	n, ix := &flowNode{}, &flowIndex{}
	s := New(Config{Node: n, Index: ix, Now: clk.now, MaxIndexDelay: 2 * time.Second})
	step := func(applied, indexed uint64) {
		clk.t = clk.t.Add(time.Second)
		n.applied, ix.indexed = applied, indexed
		s.flow.sample(context.Background())
	}
	step(0, 0)
	// Ten events a second, each sample catching a few not yet indexed.
	for i := uint64(1); i <= 30; i++ {
		step(10*i+5, 10*i)
	}
	if rate := s.flow.lagNow().rate; rate > 20 {
		t.Fatalf("rate %.0f events/s after a trickle of 10/s", rate)
	}
	if err := s.flow.take(40); err == nil {
		t.Fatal("a 40-event batch admitted while 5 events are behind at ~10/s (0.5 s) and the budget is ~25: the test no longer plays the trickle")
	}
	step(305, 305) // caught up
	for _, size := range []int{40, 9_000} {
		if err := s.flow.take(size); err != nil {
			t.Fatalf("caught up: a %d-event batch refused: %v", size, err)
		}
	}
}

// TestDiskWatermark: below --min-free-disk the node refuses writes with
// 507 and says why in /readyz (and theeye_ready is 0); above it, both are
// back.
func TestDiskWatermark(t *testing.T) {
	for _, tc := range []struct {
		minFree int64
		low     bool
	}{{1 << 62, true}, {1, false}} {
		reg := prometheus.NewRegistry()
		s := New(Config{Node: &flowNode{}, Index: &flowIndex{}, DataDir: t.TempDir(), MinFreeDisk: tc.minFree,
			DiskStores: map[string]string{"log": t.TempDir()}, Registerer: reg, Gatherer: reg})
		s.flow.sample(context.Background())
		err := s.flow.admitWrite()
		if tc.low != (theeye.ErrorCode(err) == theeye.EInsufficientStorage) {
			t.Fatalf("min free %d: admitWrite %v", tc.minFree, err)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if tc.low != (rec.Code == 503 && strings.Contains(rec.Body.String(), "--min-free-disk")) {
			t.Fatalf("min free %d: readyz %d %s", tc.minFree, rec.Code, rec.Body)
		}
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if want := map[bool]string{true: "\ntheeye_ready 0\n", false: "\ntheeye_ready 1\n"}[tc.low]; !strings.Contains(rec.Body.String(), want) {
			t.Fatalf("min free %d: /metrics lacks %q (what /readyz answered):\n%s", tc.minFree, want, rec.Body)
		}
		if tc.low {
			rec := httptest.NewRecorder()
			s.writeError(rec, httptest.NewRequest("POST", "/v1/events", nil), err)
			if rec.Code != http.StatusInsufficientStorage || rec.Header().Get("Retry-After") == "" {
				t.Fatalf("507 answer: %d %q", rec.Code, rec.Header().Get("Retry-After"))
			}
		}
	}
}
