package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/index"
	"github.com/theeye/theeye/raftnode"
)

// Node is what the API needs of the Raft node (raftnode.Node satisfies
// it): typed calls, each one thing the API asks of the cluster; how they
// travel through Raft is the node's business.
type Node interface {
	// Who and where.
	ID() string
	Leader() (id, httpAddr string)
	IsLeader() bool
	AppliedSeq() uint64
	// FirstSeq is the first seq the node's log holds; RetainFrom the
	// cluster's retention cut (the first seq queries return).
	FirstSeq() uint64
	RetainFrom() uint64
	Stats() (raftnode.Stats, error)
	// QueueDepth is how many acknowledged-to-nobody events wait for, or
	// sit in, a Raft entry not yet applied.
	QueueDepth() int
	// State is the node's Raft state; Healthy why it cannot write its
	// stores now (nil when it can).
	State() string
	Healthy() error
	// CatchingUp returns why the node has yet to apply what the cluster
	// had committed when it started, or nil.
	CatchingUp() error

	// Ingest.
	Append(ctx context.Context, envs []theeye.Envelope) (uint64, error)

	// Apps and keys.
	LookupKey(hash string) (theeye.Key, bool)
	Apps() []theeye.App
	Keys() []theeye.Key
	CreateApp(ctx context.Context, app theeye.App, key theeye.Key) error
	CreateKey(ctx context.Context, key theeye.Key) error
	RevokeKey(ctx context.Context, id string) error
	SetRateLimit(ctx context.Context, id string, rl *theeye.RateLimit) error

	// Erasure of a session.
	EraseSession(ctx context.Context, session string, now time.Time) (theeye.Deletion, error)
	Deletion(id uint64) (theeye.Deletion, bool)

	// Rules: schemas, revalidations, the cluster config.
	Schemas() []theeye.Schema
	SchemaVersions(category, name string) []theeye.Schema
	PutSchema(ctx context.Context, s theeye.Schema) (theeye.Schema, error)
	Revalidate(ctx context.Context, r theeye.Revalidation) (theeye.Revalidation, error)
	Revalidations(after uint64) []theeye.Revalidation
	Config() theeye.ClusterConfig
	SetConfig(ctx context.Context, p theeye.ConfigPatch) (theeye.ClusterConfig, error)

	// Membership.
	AddVoter(ctx context.Context, info raftnode.NodeInfo) error
	RemoveServer(ctx context.Context, id string) error

	// Backup takes a snapshot of this node and opens it as a backup.
	Backup(ctx context.Context) (*raftnode.Backup, error)
}

// Index is what the API needs of the local index (index.Index).
type Index interface {
	IndexedSeq() uint64
	// Healthy says why the indexer cannot index now (nil when it can).
	Healthy() error
	Stats() index.Stats
	WaitIndexed(ctx context.Context, seq uint64) error
	Events(ctx context.Context, q index.EventQuery, fn func(event []byte) error) (string, error)
	Errors(ctx context.Context, q index.ErrorQuery, fn func(record []byte) error) (string, error)
	ErrorsSummary(ctx context.Context, from, to time.Time) (index.ErrorSummary, error)
	WaitRevalidation(ctx context.Context, id uint64) (index.RevalidationResult, error)
	Revalidation(id uint64) (index.RevalidationResult, error)
	ErasureState(id uint64) (stage int, seqs []uint64, err error)
	ErasureDoneAt(id uint64) (time.Time, error)
	// EventStats reads the event counts of GET /v1/stats.
	EventStats(ctx context.Context, q index.StatsQuery) (index.EventStats, error)
	// The stream (stream.go) and the status of a client id (status.go).
	ReadStream(ctx context.Context, q index.StreamQuery, from uint64, maxEvents, maxBytes int, fn func(seq uint64, event []byte) error) (uint64, error)
	EventStatus(ctx context.Context, app, id string, seq uint64) (index.EventStatus, error)
}

// Config configures a Server.
type Config struct {
	Node  Node
	Index Index

	MaxBody        int64 // bytes of one request body, as sent and after gzip; default 8 MiB
	MaxEvent       int   // bytes of one event; default 64 KiB
	MaxBatchEvents int   // events in one request; default 10000
	// MaxPageBytes bounds one page of a list: a page stops after the item
	// that reaches it, with a next_cursor. Default 4 MiB.
	MaxPageBytes int
	ReadyLag     uint64 // /readyz fails while the indexer is this many events behind; default 100000

	// Streams (stream.go): at most MaxStreams open at a time (default 64;
	// more: 503), a keep-alive comment after StreamKeepAlive without a
	// write (default 15 s), a reader dropped when a write to it takes
	// longer than StreamWriteTimeout (default 30 s).
	MaxStreams         int
	StreamKeepAlive    time.Duration
	StreamWriteTimeout time.Duration

	// Flow control (flow.go). MaxIndexLag and MaxIndexDelay: a ready
	// member further behind than either makes ingest 429 overloaded
	// (defaults 1,000,000 events, 2 s); MaxCommitQueue: as many events
	// waiting for Raft do too (default 50,000: a few seconds of indexing). MinFreeDisk: the disk
	// watermark below which writes are 507 (0: 1 GiB or 5 % of the file
	// system, the smaller). DataDir is where the disk is read ("": no
	// disk watch); DiskStores names each store's dir for the metrics.
	MaxIndexLag    uint64
	MaxIndexDelay  time.Duration
	MaxCommitQueue int
	MinFreeDisk    int64
	DataDir        string
	DiskStores     map[string]string

	// Per-connection bounds (net/http): the headers, the whole request,
	// the whole answer (an NDJSON export extends its deadline chunk by
	// chunk instead). Defaults 10 s, 60 s, 2 min.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration

	// ClusterKey is the shared secret of --cluster-key. It never leaves
	// the node: node-to-node calls prove it (nodeauth.go).
	ClusterKey string
	// NodeID is this node's id, named in the proofs it signs.
	NodeID string
	// HTTPClient is used to forward to the leader and to ask peers for
	// their status (TLS settings live in its transport).
	HTTPClient *http.Client

	Logger     *slog.Logger
	Registerer prometheus.Registerer // where the API's metrics go
	Gatherer   prometheus.Gatherer   // what /metrics serves
	Now        func() time.Time
}

func (c *Config) setDefaults() {
	if c.MaxBody <= 0 {
		c.MaxBody = 8 << 20
	}
	if c.MaxEvent <= 0 {
		c.MaxEvent = 64 << 10
	}
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = 10000
	}
	if c.MaxPageBytes <= 0 {
		c.MaxPageBytes = 4 << 20
	}
	if c.ReadyLag == 0 {
		c.ReadyLag = 100000
	}
	if c.MaxIndexLag == 0 {
		c.MaxIndexLag = 1_000_000
	}
	if c.MaxIndexDelay <= 0 {
		c.MaxIndexDelay = 2 * time.Second
	}
	if c.MaxCommitQueue <= 0 {
		c.MaxCommitQueue = 50_000
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.StreamKeepAlive <= 0 {
		c.StreamKeepAlive = DefaultStreamKeepAlive
	}
	if c.StreamWriteTimeout <= 0 {
		c.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 60 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: forwardTimeout}
	}
	if c.Gatherer == nil {
		c.Gatherer = prometheus.NewRegistry()
	}
}

// Server is The Eye's HTTP server.
type Server struct {
	cfg    Config
	logger *slog.Logger
	m      *metrics
	router *httprouter.Router
	http   *http.Server
	// promHandler serves /metrics.
	promHandler http.Handler
	bufs        bufferPool
	nodeAuth    *nodeAuth // nil without a cluster key: every node proof is refused
	limits      *keyLimiters
	flow        *flow
	disk        *diskWatch
	// ingestRefusal is the leader's last "slow down" to ingest, kept on a
	// follower (leaderOnlyIngest).
	ingestRefusal refusalCache
	stopFlow      context.CancelFunc
	flowDone      chan struct{}
	streams       *streams
	// explorePolicy is the Content-Security-Policy of GET /explore.
	explorePolicy string
	// docsPolicy is that of the docs page at "/", built the same way.
	docsPolicy string
}

// New builds a Server; Serve starts it.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, logger: cfg.Logger.With("component", "api"), nodeAuth: newNodeAuth(cfg.ClusterKey, cfg.Now),
		limits: newKeyLimiters(), explorePolicy: inlinePolicy(explorePage), docsPolicy: inlinePolicy(docsPage)}
	s.m = newMetrics(cfg.Registerer)
	s.disk = newDiskWatch(cfg.DataDir, cfg.DiskStores, cfg.MinFreeDisk, s.m)
	s.flow = newFlow(s)
	s.streams = newStreams(&s.cfg)
	s.promHandler = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}})
	s.router = s.routes()
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.http.RegisterOnShutdown(s.streams.shutdown)
	return s
}

// route is one entry of the API surface.
type route struct {
	method, path string
	handle       httprouter.Handle
}

// routeTable is the whole HTTP surface in one place: what routes()
// registers and what the OpenAPI test checks /openapi.json against.
func (s *Server) routeTable() []route {
	return []route{
		{http.MethodPost, "/v1/events", s.auth(theeye.ScopeIngest, s.leaderOnlyIngest(s.handleIngest))},
		{http.MethodGet, "/v1/events", s.auth(theeye.ScopeRead, s.handleEvents)},
		{http.MethodGet, "/v1/events/:id/status", s.authAny([]theeye.Scope{theeye.ScopeIngest, theeye.ScopeRead}, s.handleEventStatus)},
		{http.MethodGet, "/v1/stream", s.auth(theeye.ScopeRead, s.handleStream)},
		{http.MethodGet, "/v1/sessions/:session_id/events", s.auth(theeye.ScopeRead, s.handleSessionEvents)},
		{http.MethodGet, "/v1/stats", s.auth(theeye.ScopeRead, s.handleStats)},
		{http.MethodDelete, "/v1/sessions/:session_id", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.handleEraseSession))},
		{http.MethodGet, "/v1/deletions/:id", s.auth(theeye.ScopeAdmin, s.handleDeletion)},
		{http.MethodGet, "/v1/errors", s.auth(theeye.ScopeRead, s.handleErrors)},
		{http.MethodGet, "/v1/errors/summary", s.auth(theeye.ScopeRead, s.handleErrorsSummary)},
		{http.MethodPost, "/v1/errors/revalidate", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.storing(s.handleRevalidate)))},
		{http.MethodGet, "/v1/errors/revalidate/:id", s.auth(theeye.ScopeAdmin, s.handleRevalidation)},

		{http.MethodPost, "/v1/schemas", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.storing(s.handlePutSchema)))},
		{http.MethodGet, "/v1/schemas", s.auth(theeye.ScopeAdmin, s.handleListSchemas)},

		{http.MethodPost, "/v1/apps", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.storing(s.handleCreateApp)))},
		{http.MethodGet, "/v1/apps", s.auth(theeye.ScopeAdmin, s.handleListApps)},
		{http.MethodPost, "/v1/keys", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.storing(s.handleCreateKey)))},
		{http.MethodGet, "/v1/keys", s.auth(theeye.ScopeAdmin, s.handleListKeys)},
		{http.MethodDelete, "/v1/keys/:key_id", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.handleRevokeKey))},
		{http.MethodPatch, "/v1/keys/:key_id", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.handlePatchKey))},

		{http.MethodGet, "/v1/config", s.auth(theeye.ScopeAdmin, s.handleGetConfig)},
		{http.MethodPut, "/v1/config", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.storing(s.handlePutConfig)))},

		{http.MethodGet, "/v1/backup", s.auth(theeye.ScopeAdmin, s.handleBackup)},

		{http.MethodGet, "/v1/cluster", s.auth(theeye.ScopeRead, s.handleCluster)},
		{http.MethodGet, "/v1/cluster/self", s.authNode(theeye.ScopeRead, s.handleSelf)},
		{http.MethodPost, "/v1/cluster/nodes", s.authNode(theeye.ScopeAdmin, s.leaderOnly(s.handleAddNode))},
		{http.MethodDelete, "/v1/cluster/nodes/:id", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.handleRemoveNode))},

		{http.MethodGet, "/healthz", s.handleHealthz},
		{http.MethodGet, "/readyz", s.handleReadyz},
		{http.MethodGet, "/metrics", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) { s.promHandler.ServeHTTP(w, r) }},
		{http.MethodGet, "/openapi.json", s.handleOpenAPI},
		{http.MethodGet, "/status", s.handleStatus},
		{http.MethodGet, "/", s.handleIndexPage},
		{http.MethodGet, "/explore", s.handleExplorePage},
	}
}

// routes builds the router from routeTable. Every route, and the not-found
// and method-not-allowed answers, is counted under its pattern, so metrics
// labels stay few and no request is looked up twice.
func (s *Server) routes() *httprouter.Router {
	r := httprouter.New()
	r.HandleMethodNotAllowed = true
	r.NotFound = s.counted("other", func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) {
		s.writeError(w, req, theeye.Errorf(theeye.ENotFound, "no route %s %s", req.Method, req.URL.Path))
	})
	r.MethodNotAllowed = s.counted("other", func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) {
		s.writeError(w, req, theeye.Errorf(theeye.EMethodNotAllowed, "method %q is not allowed on %s (allowed: %s)", req.Method, req.URL.Path, w.Header().Get("Allow")))
	})
	for _, rt := range s.routeTable() {
		r.Handle(rt.method, rt.path, httprouter.Handle(s.counted(rt.path, rt.handle)))
	}
	return r
}

// counted wraps h with the request counter and latency histogram of route.
func (s *Server) counted(route string, h httprouter.Handle) countedHandle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r, ps)
		method := methodLabel(r.Method)
		s.m.requests.WithLabelValues(route, method, strconv.Itoa(sw.status)).Inc()
		s.m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	}
}

// methodLabel is the method as a metrics label: one of the standard
// methods, else "other", so made-up methods cannot add series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// countedHandle is an httprouter.Handle that is also an http.Handler (for
// the router's NotFound and MethodNotAllowed).
type countedHandle httprouter.Handle

func (h countedHandle) ServeHTTP(w http.ResponseWriter, r *http.Request) { h(w, r, nil) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// FlushError flushes and reports a failed write (http.ResponseController
// prefers it to Flush).
func (w *statusWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Serve serves HTTP on ln until Shutdown, with the flow control loop
// (flow.go) running beside it.
func (s *Server) Serve(ln net.Listener) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopFlow, s.flowDone = cancel, make(chan struct{})
	s.flow.sample(ctx) // decisions before the first request
	go func() {
		defer close(s.flowDone)
		s.flow.run(ctx)
	}()
	if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for requests in flight;
// those still running when ctx ends (a client that stopped reading an
// export, say) have their connections closed: the node stops anyway.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.stopFlow != nil {
		s.stopFlow()
		<-s.flowDone
	}
	err := s.http.Shutdown(ctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		s.logger.Warn("requests still running at the shutdown deadline; closing their connections", "err", err)
		if cerr := s.http.Close(); cerr != nil {
			return fmt.Errorf("close http: %w", cerr)
		}
		return nil
	}
	return fmt.Errorf("shut down http: %w", err)
}

// caller is who a request comes from, as proven: a client's key, or a
// node of this cluster (X-Eye-Node-Auth), and, for a request a follower
// relayed, the follower that relayed it (X-Eye-Forwarded).
type caller struct {
	key         *theeye.Key // the client's key; nil for a node's own call
	node        string      // the node whose own call this is
	forwardedBy string      // the follower that relayed this request to us
}

// handler is a route's handler once its caller is known.
type handler func(http.ResponseWriter, *http.Request, httprouter.Params, *caller)

// auth wraps a handler with API.md's authentication: a Bearer key, known
// (401 otherwise) and holding the scope (403 otherwise). A request is
// authorised by the credential its client sent, wherever it lands: a
// follower that does not know the key yet (it may have been created a
// moment ago) relays the request, with that same credential, to the leader,
// which decides. Node proofs grant nothing here (authNode).
func (s *Server) auth(scope theeye.Scope, h handler) httprouter.Handle {
	return s.authenticate([]theeye.Scope{scope}, false, h)
}

// authAny is auth for a route any of scopes opens.
func (s *Server) authAny(scopes []theeye.Scope, h handler) httprouter.Handle {
	return s.authenticate(scopes, false, h)
}

// authNode is auth that also accepts a node's own proof of the cluster key
// (peer status, a node joining): the handler then gets caller.node.
func (s *Server) authNode(scope theeye.Scope, h handler) httprouter.Handle {
	return s.authenticate([]theeye.Scope{scope}, true, h)
}

func (s *Server) authenticate(scopes []theeye.Scope, nodeOK bool, h handler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		c, err := s.verifyNodeHeaders(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if c.node != "" {
			if !nodeOK {
				s.writeError(w, r, theeye.Errorf(theeye.EForbidden, "a node's proof of the cluster key grants peer status and joining only; send Authorization: Bearer <key>"))
				return
			}
			h(w, r, ps, c)
			return
		}
		k, err := s.lookupBearer(r)
		if err != nil {
			if theeye.ErrorCode(err) == theeye.EUnauthorized && r.Header.Get("Authorization") != "" &&
				c.forwardedBy == "" && !s.cfg.Node.IsLeader() {
				if id, url := s.cfg.Node.Leader(); id != "" && url != "" {
					s.forward(w, r, id, url, nil)
					return
				}
			}
			s.writeError(w, r, err)
			return
		}
		if !slices.ContainsFunc(scopes, k.Has) {
			s.writeError(w, r, theeye.Errorf(theeye.EForbidden, "key %q does not have the \"%s\" scope", k.ID, scopeList(scopes)))
			return
		}
		c.key = k
		h(w, r, ps, c)
	}
}

// verifyNodeHeaders checks the node-to-node headers a request carries.
// None of them grants anything unless its proof holds: a request with a
// header that does not verify is refused with 401. The body is read (it is
// part of what a proof covers) and put back for the handler.
func (s *Server) verifyNodeHeaders(w http.ResponseWriter, r *http.Request) (*caller, error) {
	c := &caller{}
	if _, ok := r.Header[http.CanonicalHeaderKey(HeaderClusterKey)]; ok {
		return nil, theeye.Errorf(theeye.EUnauthorized, "%s is not accepted: nodes prove the cluster key (%s) and clients send \"Authorization: Bearer <key>\"", HeaderClusterKey, HeaderNodeAuth)
	}
	fwd, node := r.Header.Values(HeaderForwarded), r.Header.Values(HeaderNodeAuth)
	if len(fwd) == 0 && len(node) == 0 {
		return c, nil
	}
	if len(fwd) > 1 || len(node) > 1 {
		return nil, theeye.Errorf(theeye.EUnauthorized, "%s and %s may each appear once", HeaderForwarded, HeaderNodeAuth)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		return nil, theeye.Errorf(theeye.EBodyTooLarge, "the body is over the %d-byte limit", s.cfg.MaxBody).WithDetail("limit", s.cfg.MaxBody)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sr := signedRequest{method: r.Method, uri: r.URL.RequestURI(), body: body}
	if len(fwd) == 1 {
		sr.credentials = forwardedCredentials(r.Header)
		if c.forwardedBy, err = s.nodeAuth.verify(purposeForward, fwd[0], &sr); err != nil {
			return nil, theeye.Errorf(theeye.EUnauthorized, "%s: %v", HeaderForwarded, err)
		}
	}
	if len(node) == 1 {
		sr.credentials = r.Header.Get("Authorization")
		if c.node, err = s.nodeAuth.verify(purposeCall, node[0], &sr); err != nil {
			return nil, theeye.Errorf(theeye.EUnauthorized, "%s: %v", HeaderNodeAuth, err)
		}
	}
	return c, nil
}

// lookupBearer finds the replicated key the Authorization header names.
// The keys are cluster state only: no node holds a key of its own, so a
// revoked key is refused everywhere once the revocation is applied.
func (s *Server) lookupBearer(r *http.Request) (*theeye.Key, error) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if h == "" {
		return nil, theeye.Errorf(theeye.EUnauthorized, "missing Authorization header: send \"Authorization: Bearer <key>\"")
	}
	if len(r.Header.Values("Authorization")) > 1 {
		return nil, theeye.Errorf(theeye.EUnauthorized, "send one Authorization header")
	}
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return nil, theeye.Errorf(theeye.EUnauthorized, "the Authorization header must be \"Bearer <key>\"")
	}
	secret := h[len(prefix):]
	if len(secret) > maxSecretLen {
		return nil, theeye.Errorf(theeye.EUnauthorized, "unknown or revoked key")
	}
	k, ok := s.cfg.Node.LookupKey(theeye.HashSecret(secret))
	if !ok {
		return nil, theeye.Errorf(theeye.EUnauthorized, "unknown or revoked key")
	}
	return &k, nil
}

// scopeList names scopes for a message: "read", or "ingest or read".
func scopeList(scopes []theeye.Scope) string {
	names := make([]string, len(scopes))
	for i, sc := range scopes {
		names[i] = string(sc)
	}
	return strings.Join(names, `" or "`)
}

// maxSecretLen bounds the secret hashed per request (ours are 47 bytes).
const maxSecretLen = 512
