package client

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FullPolicy says what Track does when the queue is full.
type FullPolicy int

const (
	// Block makes Track wait until there is room in the queue, or until its
	// context is done (it then returns the context's error; the event is
	// not queued).
	Block FullPolicy = iota
	// ReturnError makes Track return ErrQueueFull at once; the event is not
	// queued. (The name Error is taken by the *Error type.)
	ReturnError
)

func (p FullPolicy) String() string {
	switch p {
	case Block:
		return "block"
	case ReturnError:
		return "error"
	}
	return fmt.Sprintf("FullPolicy(%d)", int(p))
}

// Config configures a Client. Zero fields take DefaultConfig's values.
type Config struct {
	// Servers are the base URLs of the nodes to talk to ("http://host:port";
	// "host:port" means http). Requests go to the first that answers and
	// stay there until it fails; any node accepts writes and forwards them
	// to the leader.
	Servers []string
	// Key is the API key, sent as "Authorization: Bearer <Key>".
	Key string

	// BatchSize is the most events one ingest request carries (Track).
	BatchSize int
	// BatchBytes is the most bytes of encoded events one ingest request
	// carries; keep it under the server's --max-body (8 MiB by default).
	BatchBytes int
	// FlushInterval is the longest an event waits in a partial batch.
	FlushInterval time.Duration
	// QueueSize bounds the events Track holds that the server has not yet
	// acknowledged (buffered or in flight).
	QueueSize int
	// OnFull is what Track does when QueueSize events are held.
	OnFull FullPolicy
	// MaxInFlight is how many batches are sent concurrently. With more than
	// one, batches may be committed out of Track order (sessions are ordered
	// by timestamp anyway).
	MaxInFlight int
	// Gzip compresses ingest bodies (Content-Encoding: gzip).
	Gzip bool
	// OnError, when set, is called once for every batch queued by Track that
	// fails permanently, with a *BatchError, from the goroutine that sent it
	// (so concurrently when MaxInFlight > 1), before Flush or Close learn of
	// it. It must not block for long. The same errors are also returned by
	// the next Flush or Close.
	OnError func(error)

	// MaxRetries is how many times a failed request is sent again (network
	// errors, 429, 502, 503, 504), across the servers; -1 means never.
	MaxRetries int
	// RetryMin and RetryMax bound the exponential backoff between rounds of
	// attempts (with jitter); a server's Retry-After is honoured on top.
	RetryMin, RetryMax time.Duration
	// RequestTimeout bounds one attempt (a query with Wait gets Wait more).
	RequestTimeout time.Duration

	// HTTPClient sends the requests; nil means a client of its own with a
	// transport cloned from http.DefaultTransport (and TLS). Its Timeout
	// should be zero: RequestTimeout bounds each attempt.
	HTTPClient *http.Client
	// TLS configures HTTPS for the client's own transport (nil: the
	// system's roots), e.g. RootCAs with the CA of a cluster run with
	// --tls-ca. Ignored with HTTPClient.
	TLS *tls.Config
	// UserAgent is sent on every request.
	UserAgent string
	// Logger receives retries (debug), failovers (info) and failed batches
	// (warn); nil discards.
	Logger *slog.Logger
	// Now is the clock used for events without a Timestamp; nil is time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults New applies to zero fields; Servers
// defaults to the address `theeye serve` listens on without flags.
func DefaultConfig() Config {
	return Config{
		Servers:        []string{"http://127.0.0.1:8080"},
		BatchSize:      500,
		BatchBytes:     1 << 20,
		FlushInterval:  time.Second,
		QueueSize:      10000,
		OnFull:         Block,
		MaxInFlight:    2,
		MaxRetries:     10,
		RetryMin:       100 * time.Millisecond,
		RetryMax:       5 * time.Second,
		RequestTimeout: 30 * time.Second,
		UserAgent:      "theeye-go-client/1",
	}
}

// withDefaults returns c with zero fields set from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if len(c.Servers) == 0 {
		c.Servers = d.Servers
	}
	c.BatchSize = cmp.Or(c.BatchSize, d.BatchSize)
	c.BatchBytes = cmp.Or(c.BatchBytes, d.BatchBytes)
	c.FlushInterval = cmp.Or(c.FlushInterval, d.FlushInterval)
	c.QueueSize = cmp.Or(c.QueueSize, d.QueueSize)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, d.MaxInFlight)
	c.MaxRetries = cmp.Or(c.MaxRetries, d.MaxRetries)
	c.RetryMin = cmp.Or(c.RetryMin, d.RetryMin)
	c.RetryMax = cmp.Or(c.RetryMax, d.RetryMax)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, d.RequestTimeout)
	c.UserAgent = cmp.Or(c.UserAgent, d.UserAgent)
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case len(c.Servers) == 0:
		return errors.New("client config: no Servers")
	case c.BatchSize < 1:
		return fmt.Errorf("client config: BatchSize %d: want at least 1", c.BatchSize)
	case c.BatchBytes < 1:
		return fmt.Errorf("client config: BatchBytes %d: want at least 1", c.BatchBytes)
	case c.FlushInterval <= 0:
		return fmt.Errorf("client config: FlushInterval %s: want more than 0", c.FlushInterval)
	case c.QueueSize < c.BatchSize:
		return fmt.Errorf("client config: QueueSize %d is smaller than BatchSize %d", c.QueueSize, c.BatchSize)
	case c.OnFull != Block && c.OnFull != ReturnError:
		return fmt.Errorf("client config: OnFull %s: want Block or ReturnError", c.OnFull)
	case c.MaxInFlight < 1:
		return fmt.Errorf("client config: MaxInFlight %d: want at least 1", c.MaxInFlight)
	case c.MaxRetries < -1:
		return fmt.Errorf("client config: MaxRetries %d: want -1 (never) or more", c.MaxRetries)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("client config: RetryMin %s, RetryMax %s: want 0 < RetryMin <= RetryMax", c.RetryMin, c.RetryMax)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("client config: RequestTimeout %s: want more than 0", c.RequestTimeout)
	}
	for _, s := range c.Servers {
		if _, err := normalizeServer(s); err != nil {
			return fmt.Errorf("client config: %w", err)
		}
	}
	return nil
}

// normalizeServer turns "host:port" or "http://host:port/" into
// "http://host:port".
func normalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("server %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("server %q: want an http or https URL", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server %q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("server %q: want a base URL without query or fragment", s)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// Stats are the client's counters since New.
type Stats struct {
	Queued  uint64 // events Track holds: buffered or in flight (a gauge)
	Sent    uint64 // events the server acknowledged (Track and Ingest)
	Failed  uint64 // events of Track batches that failed permanently (see BatchError)
	Retried uint64 // requests sent again after a retryable failure
	// The cluster saying "slow down", answers counted by code: 429
	// rate_limited (the key's limit), 429 overloaded (the cluster indexes
	// behind what it acknowledged) and 507 insufficient_storage.
	RateLimited, Overloaded, StorageFull uint64
	Requests                             uint64 // HTTP attempts made
	Batches                              uint64 // ingest requests acknowledged
	LastSeq                              uint64 // the highest seq the server acknowledged
}

// Client talks to The Eye over HTTP. It is safe for concurrent use. Close
// it to send what Track has queued.
type Client struct {
	cfg     Config
	servers []string
	http    *http.Client
	log     *slog.Logger
	now     func() time.Time
	ownHTTP bool // http was made by New, so Close may close its connections

	preferred atomic.Int32 // index into servers of the last one that answered

	sent, failed, retried, requests, batches, lastSeq atomic.Uint64
	rateLimited, overloaded, storageFull              atomic.Uint64

	// bg is the context of background sends; Close cancels it when its own
	// context ends before the queue is drained.
	bg       context.Context
	bgCancel context.CancelFunc
	workers  sync.WaitGroup

	mu       sync.Mutex
	buf      []item              // events not yet cut into a batch
	bufBytes int                 // their encoded size, newlines included
	bufGen   uint64              // bumped on every cut, so a stale timer does nothing
	timer    *time.Timer         // cuts buf after FlushInterval
	ready    []*batch            // cut batches no worker has taken yet
	pending  map[*batch]struct{} // cut batches not yet resolved (ready or in flight)
	queued   int                 // events in buf and pending
	closed   bool
	errs     []error       // failed batches not yet returned by Flush or Close
	lostErrs int           // failed batches beyond maxErrs, reported as a count
	changed  chan struct{} // closed and replaced on every change of the above
}

// maxErrs bounds the batch errors kept for Flush; more are counted.
const maxErrs = 100

// New returns a Client for cfg (zero fields take DefaultConfig's values)
// and starts its senders.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, now: cfg.Now, http: cfg.HTTPClient, log: cfg.Logger}
	for _, s := range cfg.Servers {
		u, _ := normalizeServer(s) // checked by Validate
		c.servers = append(c.servers, u)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "theeye-client")
	if c.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.MaxInFlight + 4
		tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		if cfg.TLS != nil {
			tr.TLSClientConfig = cfg.TLS.Clone()
		}
		c.http = &http.Client{Transport: tr}
		c.ownHTTP = true
	}
	c.pending = make(map[*batch]struct{})
	c.changed = make(chan struct{})
	c.buf = make([]item, 0, cfg.BatchSize)
	c.bg, c.bgCancel = context.WithCancel(context.Background())
	c.workers.Add(cfg.MaxInFlight)
	for range cfg.MaxInFlight {
		go c.worker()
	}
	return c, nil
}

// Servers returns the normalised base URLs the client uses.
func (c *Client) Servers() []string { return append([]string(nil), c.servers...) }

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	q := c.queued
	c.mu.Unlock()
	return Stats{
		Queued:      uint64(q),
		Sent:        c.sent.Load(),
		Failed:      c.failed.Load(),
		Retried:     c.retried.Load(),
		RateLimited: c.rateLimited.Load(),
		Overloaded:  c.overloaded.Load(),
		StorageFull: c.storageFull.Load(),
		Requests:    c.requests.Load(),
		Batches:     c.batches.Load(),
		LastSeq:     c.lastSeq.Load(),
	}
}

func (c *Client) noteAck(a Ack) {
	c.sent.Add(uint64(a.Accepted))
	c.batches.Add(1)
	for {
		cur := c.lastSeq.Load()
		if a.Seq <= cur || c.lastSeq.CompareAndSwap(cur, a.Seq) {
			return
		}
	}
}
