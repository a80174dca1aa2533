package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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

// Node is what the API needs of the Raft node (raftnode.Node).
type Node interface {
	ID() string
	Append(ctx context.Context, envs []theeye.Envelope) (uint64, error)
	LookupKey(hash string) (theeye.Key, bool)
	Apps() []theeye.App
	Keys() []theeye.Key
	ApplyConfig(ctx context.Context, cmd *raftnode.Command) error
	Leader() (id, httpAddr string)
	IsLeader() bool
	AppliedSeq() uint64
	Stats() (raftnode.Stats, error)
	AddVoter(ctx context.Context, info raftnode.NodeInfo) error
	RemoveServer(ctx context.Context, id string) error
	PutSchema(ctx context.Context, s theeye.Schema) (theeye.Schema, error)
	Schemas() []theeye.Schema
	SchemaVersions(category, name string) []theeye.Schema
	Revalidate(ctx context.Context, r theeye.Revalidation) (theeye.Revalidation, error)
}

// Index is what the API needs of the local index (index.Index).
type Index interface {
	IndexedSeq() uint64
	Stats() index.Stats
	WaitIndexed(ctx context.Context, seq uint64) error
	Events(ctx context.Context, q index.EventQuery, fn func(event []byte) error) (string, error)
	Errors(ctx context.Context, q index.ErrorQuery, fn func(record []byte) error) (string, error)
	ErrorsSummary(ctx context.Context, from, to time.Time) (index.ErrorSummary, error)
	WaitRevalidation(ctx context.Context, id uint64) (index.RevalidationResult, error)
}

// Config configures a Server.
type Config struct {
	Node  Node
	Index Index

	// AdminKeyHash is the SHA-256 (hex) of this node's --admin-key, accepted
	// locally on top of the replicated keys.
	AdminKeyHash string

	MaxBody  int64  // bytes of one request body (after gzip); default 8 MiB
	MaxEvent int    // bytes of one event; default 64 KiB
	ReadyLag uint64 // /readyz fails while the indexer is this many events behind; default 100000

	// ClusterKey is the shared secret of --cluster-key: joins may present
	// it instead of an admin key, and forwarded requests must carry it.
	ClusterKey string
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
	if c.ReadyLag == 0 {
		c.ReadyLag = 100000
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
}

// New builds a Server; Serve starts it.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, logger: cfg.Logger.With("component", "api")}
	s.m = newMetrics(cfg.Registerer)
	s.promHandler = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}})
	s.router = s.routes()
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
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
		{http.MethodPost, "/v1/events", s.auth(theeye.ScopeIngest, s.leaderOnly(s.handleIngest))},
		{http.MethodGet, "/v1/events", s.auth(theeye.ScopeRead, s.handleEvents)},
		{http.MethodGet, "/v1/sessions/:session_id/events", s.auth(theeye.ScopeRead, s.handleSessionEvents)},
		{http.MethodGet, "/v1/errors", s.auth(theeye.ScopeRead, s.handleErrors)},
		{http.MethodGet, "/v1/errors/summary", s.auth(theeye.ScopeRead, s.handleErrorsSummary)},
		{http.MethodPost, "/v1/errors/revalidate", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.handleRevalidate))},

		{http.MethodPost, "/v1/schemas", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.handlePutSchema))},
		{http.MethodGet, "/v1/schemas", s.auth(theeye.ScopeAdmin, s.handleListSchemas)},

		{http.MethodPost, "/v1/apps", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.handleCreateApp))},
		{http.MethodGet, "/v1/apps", s.auth(theeye.ScopeAdmin, s.handleListApps)},
		{http.MethodPost, "/v1/keys", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.handleCreateKey))},
		{http.MethodGet, "/v1/keys", s.auth(theeye.ScopeAdmin, s.handleListKeys)},
		{http.MethodDelete, "/v1/keys/:key_id", s.auth(theeye.ScopeAdmin, s.leaderOnly(s.handleRevokeKey))},

		{http.MethodGet, "/v1/cluster", s.auth(theeye.ScopeRead, s.handleCluster)},
		{http.MethodGet, "/v1/cluster/self", s.authCluster(theeye.ScopeRead, s.handleSelf)},
		{http.MethodPost, "/v1/cluster/nodes", s.authCluster(theeye.ScopeAdmin, s.leaderOnly(s.handleAddNode))},
		{http.MethodDelete, "/v1/cluster/nodes/:id", s.authCluster(theeye.ScopeAdmin, s.leaderOnly(s.handleRemoveNode))},

		{http.MethodGet, "/healthz", s.handleHealthz},
		{http.MethodGet, "/readyz", s.handleReadyz},
		{http.MethodGet, "/metrics", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) { s.promHandler.ServeHTTP(w, r) }},
		{http.MethodGet, "/openapi.json", s.handleOpenAPI},
		{http.MethodGet, "/status", s.handleStatus},
		{http.MethodGet, "/", s.handleIndexPage},
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
		s.writeError(w, req, theeye.Errorf(theeye.EInvalidRequest, "method %s is not allowed on %s", req.Method, req.URL.Path))
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
		s.m.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.status)).Inc()
		s.m.duration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	}
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

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Serve serves HTTP on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}

// auth wraps a handler with API.md's authentication: a Bearer key, known
// (401 otherwise) and holding the scope (403 otherwise).
func (s *Server) auth(scope theeye.Scope, h func(http.ResponseWriter, *http.Request, httprouter.Params, *theeye.Key)) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		k, err := s.authenticate(r)
		if err != nil {
			// A key created a moment ago may not have reached this
			// follower yet: the leader decides.
			if theeye.ErrorCode(err) == theeye.EUnauthorized && r.Header.Get("Authorization") != "" &&
				r.Header.Get(HeaderForwarded) == "" && !s.cfg.Node.IsLeader() {
				if id, url := s.cfg.Node.Leader(); id != "" && url != "" {
					s.forward(w, r, id, url)
					return
				}
			}
			s.writeError(w, r, err)
			return
		}
		if !k.Has(scope) {
			s.writeError(w, r, theeye.Errorf(theeye.EForbidden, "key %q does not have the %q scope", k.ID, scope))
			return
		}
		h(w, r, ps, k)
	}
}

func (s *Server) authenticate(r *http.Request) (*theeye.Key, error) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if h == "" {
		return nil, theeye.Errorf(theeye.EUnauthorized, "missing Authorization header: send \"Authorization: Bearer <key>\"")
	}
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return nil, theeye.Errorf(theeye.EUnauthorized, "the Authorization header must be \"Bearer <key>\"")
	}
	hash := theeye.HashSecret(h[len(prefix):])
	if s.cfg.AdminKeyHash != "" && subtle.ConstantTimeCompare([]byte(hash), []byte(s.cfg.AdminKeyHash)) == 1 {
		return &theeye.Key{ID: "admin", Name: "admin", Scopes: []theeye.Scope{theeye.ScopeAdmin}}, nil
	}
	k, ok := s.cfg.Node.LookupKey(hash)
	if !ok {
		return nil, theeye.Errorf(theeye.EUnauthorized, "unknown or revoked key")
	}
	return &k, nil
}
