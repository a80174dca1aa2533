package api

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/theeye/theeye"
)

// keyLimiters holds the token buckets of the keys that have a rate limit.
// Ingest is forwarded to the leader, so the leader's buckets are the ones
// that count: a key's limit holds for the cluster as a whole. A new leader
// starts with full buckets (a key may get one more burst at a leader
// change). It is safe for concurrent use.
type keyLimiters struct {
	mu sync.Mutex
	m  map[string]*keyLimiter // by key id; guarded by mu
}

type keyLimiter struct {
	lim *rate.Limiter
	cfg theeye.RateLimit
}

func newKeyLimiters() *keyLimiters { return &keyLimiters{m: map[string]*keyLimiter{}} }

// get returns k's bucket, nil when k has no limit. A changed limit keeps
// the bucket's tokens and takes the new rate and burst.
func (l *keyLimiters) get(k *theeye.Key) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k.RateLimit == nil {
		delete(l.m, k.ID)
		return nil
	}
	cfg := *k.RateLimit
	e, ok := l.m[k.ID]
	switch {
	case !ok:
		e = &keyLimiter{lim: rate.NewLimiter(rate.Limit(cfg.EventsPerSecond), cfg.Burst), cfg: cfg}
		l.m[k.ID] = e
	case e.cfg != cfg:
		e.lim.SetLimit(rate.Limit(cfg.EventsPerSecond))
		e.lim.SetBurst(cfg.Burst)
		e.cfg = cfg
	}
	return e.lim
}

// take takes n tokens from k's bucket, all or none. It returns nil when
// they were taken (or k has no limit), else the refusal: too_many_events
// when n is over the burst (no wait would help), rate_limited with the
// wait in whole seconds otherwise.
func (l *keyLimiters) take(k *theeye.Key, n int, now time.Time) error {
	lim := l.get(k)
	if lim == nil {
		return nil
	}
	if n > lim.Burst() {
		return theeye.Errorf(theeye.ETooManyEvents, "the request holds %d events, more than key %q may send at once (its rate limit's burst is %d): split it",
			n, k.ID, lim.Burst()).WithDetail("limit", lim.Burst())
	}
	r := lim.ReserveN(now, n)
	d := r.DelayFrom(now)
	if d == 0 {
		return nil
	}
	r.CancelAt(now)
	secs := max(1, int(math.Ceil(d.Seconds())))
	return theeye.Errorf(theeye.ERateLimited, "key %q is over its rate limit (%g events/s, burst %d); retry in %d s",
		k.ID, k.RateLimit.EventsPerSecond, k.RateLimit.Burst, secs).WithDetail(retryAfterDetail, secs)
}
