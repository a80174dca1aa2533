package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/dustin/go-humanize"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/api"
	"github.com/theeye/theeye/index"
	eyelog "github.com/theeye/theeye/log"
	"github.com/theeye/theeye/raftnode"
)

// Main is the program: the config and the components it wires; main()
// runs it until a signal.
type Main struct {
	Config Config
	Logger *slog.Logger

	log   *eyelog.Log
	node  *raftnode.Node
	index *index.Index
	api   *api.Server
	ln    net.Listener

	cancelIndex context.CancelFunc
	cancelJoin  context.CancelFunc
	pprof       *http.Server
	wg          sync.WaitGroup
	serveErr    chan error
}

// NewMain returns a Main with the given config.
func NewMain(cfg Config) *Main {
	return &Main{Config: cfg, serveErr: make(chan error, 2)}
}

func newLogger(cfg Config) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", cfg.LogFormat)
}

// RunUntilDone runs the node until ctx is cancelled (a signal), then shuts
// down cleanly.
func (m *Main) RunUntilDone(ctx context.Context) error {
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-m.serveErr:
	}
	m.Logger.Info("shutting down")
	if cerr := m.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// Run opens the log, Raft, the index and the HTTP server, and returns once
// the node serves.
func (m *Main) Run(ctx context.Context) error {
	s, err := m.prepare()
	if err != nil {
		return err
	}
	if err := m.openLog(); err != nil {
		return err
	}
	if err := m.listen(s); err != nil {
		return err
	}
	if err := m.openNode(s); err != nil {
		return err
	}
	if err := m.openIndex(ctx, s); err != nil {
		return err
	}
	if err := m.serve(ctx, s); err != nil {
		return err
	}
	m.announce(ctx, s)
	return nil
}

// setup is what Run derives from the config before it opens anything, and
// what the later steps share.
type setup struct {
	codec       eyelog.Codec
	seed        theeye.ClusterConfig // the first cluster config of a cluster this node bootstraps
	bootstrap   bool
	adminKey    string
	generated   bool // adminKey was generated now
	clusterKey  string
	serverTLS   *tls.Config
	httpClient  *http.Client // for forwarding, peer status and joining
	reg         *prometheus.Registry
	httpAddr    string // the advertised HTTP address, once listening
	minFreeDisk int64  // --min-free-disk; 0: the default
}

// prepare validates the config, sets up logging and the memory limit, and
// finds (or makes) the keys and the TLS settings.
func (m *Main) prepare() (*setup, error) {
	cfg := m.Config
	if m.Logger == nil {
		l, err := newLogger(cfg)
		if err != nil {
			return nil, err
		}
		m.Logger = l
	}
	s := &setup{bootstrap: cfg.Bootstrap || cfg.Join == ""}
	if cfg.MinFreeDisk != "" {
		n, err := humanize.ParseBytes(cfg.MinFreeDisk)
		if err != nil || n > math.MaxInt64 {
			return nil, fmt.Errorf("--min-free-disk %q: want bytes, e.g. 1073741824, 512MiB or 2GiB", cfg.MinFreeDisk)
		}
		s.minFreeDisk = int64(n)
	}
	s.seed = theeye.ClusterConfig{MaxClockSkew: cfg.MaxClockSkew, MaxEventAge: cfg.MaxEventAge, UnknownTypes: cfg.UnknownTypes, Retention: cfg.Retention}
	if err := s.seed.Validate(); err != nil {
		e, _ := theeye.AsError(err)
		return nil, fmt.Errorf("--%s: %s", strings.ReplaceAll(fmt.Sprint(e.Details["field"]), "_", "-"), e.Message)
	}
	var err error
	if s.codec, err = eyelog.ParseCodec(cfg.Codec); err != nil {
		return nil, fmt.Errorf("--codec: %w", err)
	}
	if err := applyMemoryLimit(cfg, m.Logger); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if s.adminKey, s.generated, err = m.adminKey(s.bootstrap); err != nil {
		return nil, err
	}
	if s.clusterKey, err = m.clusterKey(s.bootstrap); err != nil {
		return nil, err
	}
	var clientTLS *tls.Config
	if s.serverTLS, clientTLS, err = tlsConfigs(cfg); err != nil {
		return nil, err
	}
	s.httpClient = &http.Client{Timeout: 30 * time.Second}
	if clientTLS != nil {
		s.httpClient.Transport = &http.Transport{TLSClientConfig: clientTLS, ForceAttemptHTTP2: true}
	}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s, nil
}

// openLog opens the event log in <data-dir>/log.
func (m *Main) openLog() error {
	lc := eyelog.DefaultConfig()
	lc.Logger = m.Logger
	if m.Config.LogSegmentSize > 0 {
		lc.SegmentSize = m.Config.LogSegmentSize
	}
	l, err := eyelog.Open(filepath.Join(m.Config.DataDir, "log"), lc)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	m.log = l
	return nil
}

// listen binds the HTTP listener first, so that the advertised HTTP
// address is known (with port 0) before Raft records it.
func (m *Main) listen(s *setup) error {
	ln, err := net.Listen("tcp", m.Config.HTTP)
	if err != nil {
		return fmt.Errorf("listen http on %s: %w", m.Config.HTTP, err)
	}
	m.ln = ln
	s.httpAddr = m.Config.AdvertiseHTTP
	if s.httpAddr == "" {
		s.httpAddr = ln.Addr().String()
	}
	s.httpAddr = normalizeURL(s.httpAddr, s.serverTLS != nil)
	return nil
}

// openNode starts Raft: this node's stores, transport and FSM over the log.
func (m *Main) openNode(s *setup) error {
	cfg := m.Config
	raftCfg := raftnode.DefaultRaftConfig()
	if cfg.RaftSnapshotThreshold > 0 {
		raftCfg.SnapshotThreshold = cfg.RaftSnapshotThreshold
	}
	if cfg.RaftSnapshotInterval > 0 {
		raftCfg.SnapshotInterval = cfg.RaftSnapshotInterval
	}
	if cfg.RaftTrailingLogs > 0 {
		raftCfg.TrailingLogs = cfg.RaftTrailingLogs
	}
	seedAdmin := "" // only a node that may bootstrap seeds the admin key
	if s.bootstrap && s.adminKey != "" {
		seedAdmin = theeye.HashSecret(s.adminKey)
	}
	node, err := raftnode.Open(raftnode.Config{
		NodeID:        cfg.NodeID,
		Dir:           filepath.Join(cfg.DataDir, "raft"),
		RaftAddr:      cfg.Raft,
		AdvertiseRaft: cfg.AdvertiseRaft,
		HTTPAddr:      s.httpAddr,
		Bootstrap:     s.bootstrap,
		AdminKeyHash:  seedAdmin,
		SeedConfig:    s.seed,
		ClusterKey:    s.clusterKey,
		TLS:           s.serverTLS,
		Raft:          raftCfg,
		Log:           m.log,
		PebbleFS:      eyelog.NoReuseFS(vfs.Default),
		Codec:         s.codec,
		Logger:        m.Logger,
		Registerer:    s.reg,
		Fatal: func(err error) {
			m.Logger.Error("fatal error applying a committed entry; exiting so Raft replays it on restart", "err", err)
			os.Exit(2)
		},
	})
	if err != nil {
		return fmt.Errorf("open raft node: %w", err)
	}
	m.node = node
	return nil
}

// openIndex opens the index and starts the indexer. Schemas, the cluster
// config and revalidation requests are Raft-replicated state; the index
// reads them through its Rules interface, which the node satisfies.
func (m *Main) openIndex(ctx context.Context, s *setup) error {
	ix, err := index.Open(index.Config{
		Dir:        filepath.Join(m.Config.DataDir, "index"),
		Source:     m.log,
		Rules:      m.node,
		FS:         eyelog.NoReuseFS(vfs.Default),
		CacheSize:  m.Config.CacheSize,
		Logger:     m.Logger,
		Registerer: s.reg,
	})
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	m.index = ix
	m.node.SetPurgedBelow(ix.PurgedBelow) // log/ drops expired segments once the index no longer needs them
	m.node.SetErasureIndex(ix)
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancelIndex = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.index.Run(ictx); err != nil {
			m.serveErr <- fmt.Errorf("indexer: %w", err)
		}
	}()
	return nil
}

// serve starts the HTTP API, the join (with --join) and the profiler (with
// --pprof).
func (m *Main) serve(ctx context.Context, s *setup) error {
	cfg := m.Config
	m.api = api.New(api.Config{
		Node:              m.node,
		Index:             m.index,
		NodeID:            cfg.NodeID,
		MaxBody:           cfg.MaxBody,
		MaxEvent:          cfg.MaxEvent,
		MaxBatchEvents:    cfg.MaxBatchEvents,
		MaxPageBytes:      cfg.MaxPageBytes,
		ReadHeaderTimeout: cfg.HTTPReadHeaderTimeout,
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		ReadyLag:          cfg.ReadyLag,
		MaxIndexLag:       cfg.MaxIndexLag,
		MaxIndexDelay:     cfg.MaxIndexDelay,
		MinFreeDisk:       s.minFreeDisk,
		DataDir:           cfg.DataDir,
		DiskStores: map[string]string{"log": filepath.Join(cfg.DataDir, "log"), "index": filepath.Join(cfg.DataDir, "index"),
			"raft": filepath.Join(cfg.DataDir, "raft")},
		ClusterKey: s.clusterKey,
		HTTPClient: s.httpClient,
		Logger:     m.Logger,
		Registerer: s.reg,
		Gatherer:   s.reg,

		MaxStreams:         cfg.MaxStreams,
		StreamWriteTimeout: cfg.StreamWriteTimeout,
		StreamKeepAlive:    cfg.StreamKeepAlive,
	})
	if s.serverTLS != nil {
		hcfg := s.serverTLS.Clone()
		hcfg.ClientAuth = tls.VerifyClientCertIfGiven
		m.ln = tls.NewListener(m.ln, hcfg)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.api.Serve(m.ln); err != nil {
			m.serveErr <- err
		}
	}()
	if cfg.Join != "" {
		jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		m.cancelJoin = cancel
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			err := m.joinCluster(jctx, s.httpClient, s.clusterKey, normalizeURL(cfg.Join, s.serverTLS != nil), m.node.RaftAddr(), s.httpAddr)
			if err != nil && jctx.Err() == nil {
				m.serveErr <- err
			}
		}()
	}
	if cfg.PProf != "" {
		return m.servePProf(cfg.PProf)
	}
	return nil
}

// announce waits (briefly) until a single node can take writes, then logs
// the listening line and shows the admin key when it was generated or
// --print-admin-key asks for it.
func (m *Main) announce(ctx context.Context, s *setup) {
	cfg := m.Config
	m.awaitSoleLeadership(ctx)
	m.Logger.Info("theeye listening", "http", m.ln.Addr().String(), "raft", m.node.RaftAddr(), "raft_listen", m.node.RaftListenAddr(),
		"node", cfg.NodeID, "data_dir", cfg.DataDir, "version", version)
	keyFile := filepath.Join(cfg.DataDir, "admin.key")
	if _, known := m.node.LookupKey(theeye.HashSecret(s.adminKey)); s.generated && m.node.Seeded() && !known {
		// A cluster seeded with another admin key (a restored backup holds
		// its source's): a key generated now could never be registered.
		s.generated = false
		if err := os.Remove(keyFile); err != nil {
			m.Logger.Warn("removing the admin key generated for nothing", "file", keyFile, "err", err)
		}
		m.Logger.Info("this data dir holds a cluster seeded with its own admin key (a restored backup: the source cluster's keys); none generated")
	}
	switch {
	case s.generated:
		fmt.Fprintf(os.Stderr, "\nGenerated admin key (shown once; also saved in %s):\n\n    %s\n\n", keyFile, s.adminKey)
	case cfg.PrintAdminKey && s.adminKey != "":
		fmt.Fprintf(os.Stderr, "\nAdmin key (from %s):\n\n    %s\n\n", keyFile, s.adminKey)
	}
}

// awaitSoleLeadership waits, up to 10 s, until a node that is the only
// voter of its configuration (a new single-node cluster, or one restarted)
// has elected itself and the cluster holds its seed (the admin key), so
// that a write sent right after the listening line is not answered 503
// "no leader yet" nor 401. A member of a larger cluster does not wait: it
// cannot elect itself alone.
func (m *Main) awaitSoleLeadership(ctx context.Context) {
	st, err := m.node.Stats()
	if err != nil || len(st.Servers) != 1 || st.Servers[0].ID != m.Config.NodeID {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !m.node.IsLeader() || !m.node.Seeded() {
		select {
		case <-ctx.Done():
			m.Logger.Warn("announcing before this single node has elected itself", "err", ctx.Err())
			return
		case <-t.C:
		}
	}
}

// adminKey returns the admin key: --admin-key, else the one saved in
// <data-dir>/admin.key, else, on a node that starts a new cluster, a new
// one (saved there, mode 0600). A joining node without either has no
// local admin key and uses the cluster's.
func (m *Main) adminKey(bootstrap bool) (key string, generated bool, err error) {
	if m.Config.AdminKey != "" {
		return m.Config.AdminKey, false, nil
	}
	path := filepath.Join(m.Config.DataDir, "admin.key")
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	if !bootstrap {
		return "", false, nil
	}
	key, err = newSecret("eye_admin_", path)
	if err != nil {
		return "", false, fmt.Errorf("generate admin key: %w", err)
	}
	return key, true, nil
}

// newSecret generates a key (prefix, then 32 random bytes in base64url)
// and writes it to path, mode 0600, synced.
func newSecret(prefix, path string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("random bytes: %w", err)
	}
	key := prefix + base64.RawURLEncoding.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.WriteString(key + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return key, nil
}

// clusterKey returns the cluster key: --cluster-key, else the one saved in
// <data-dir>/cluster.key, else, on a node that starts a new cluster, a new
// one (saved there, mode 0600). Every cluster has one: it authenticates
// every Raft connection and every node-to-node call, so a cluster is never
// open to whoever reaches its Raft port. A joining node must be given it.
func (m *Main) clusterKey(bootstrap bool) (string, error) {
	if m.Config.ClusterKey != "" {
		return m.Config.ClusterKey, nil
	}
	path := filepath.Join(m.Config.DataDir, "cluster.key")
	b, err := os.ReadFile(path)
	if err == nil {
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, nil
		}
		return "", fmt.Errorf("%s is empty: give --cluster-key", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if !bootstrap {
		return "", fmt.Errorf("--join needs --cluster-key: the key of the cluster to join (on its first node, %s unless it was given by flag)", "<data-dir>/cluster.key")
	}
	if _, err := os.Stat(filepath.Join(m.Config.DataDir, "raft")); err == nil {
		return "", fmt.Errorf("this data dir holds a cluster but no %s: give --cluster-key", path)
	}
	key, err := newSecret("eye_cluster_", path)
	if err != nil {
		return "", fmt.Errorf("generate cluster key: %w", err)
	}
	m.Logger.Info("generated a cluster key; nodes that join this cluster need it (--cluster-key)", "file", path)
	return key, nil
}

// Close shuts down in order: stop taking requests and finish those in
// flight, close Raft, let the indexer commit what it has, close the index
// and the log.
func (m *Main) Close() error {
	var errs []error
	if m.cancelJoin != nil {
		m.cancelJoin()
	}
	if m.pprof != nil {
		m.pprof.Close()
	}
	if m.api != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, m.api.Shutdown(ctx))
		cancel()
	}
	if m.node != nil {
		errs = append(errs, m.node.Close())
	}
	if m.cancelIndex != nil {
		m.cancelIndex()
	}
	m.wg.Wait()
	if m.index != nil {
		errs = append(errs, m.index.Close())
	}
	if m.log != nil {
		errs = append(errs, m.log.Close())
	}
	return errors.Join(errs...)
}

// secretFlags are the flags whose values never leave the process.
var secretFlags = [...]string{"admin-key", "cluster-key"}

// redactedCmdline is pprof's cmdline handler with the values of secretFlags
// replaced: the profile port must not hand out the keys.
func redactedCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, strings.Join(redactArgs(os.Args), "\x00"))
}

// redactArgs returns args with the value of every secret flag, given as
// "--flag value" or "--flag=value" (one dash or two), replaced.
func redactArgs(args []string) []string {
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(out[i], "-"), "=")
		if !strings.HasPrefix(out[i], "-") || !slices.Contains(secretFlags[:], name) {
			continue
		}
		if hasValue {
			out[i] = out[i][:strings.Index(out[i], "=")+1] + "[redacted]"
		} else if i+1 < len(out) {
			out[i+1] = "[redacted]"
			i++
		}
	}
	return out
}

// servePProf serves net/http/pprof's handlers on their own listener and
// mux (never on the API's), for profiling a node under load.
func (m *Main) servePProf(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen --pprof on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", redactedCmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.pprof.Serve(ln)
	}()
	m.Logger.Info("pprof listening", "addr", ln.Addr().String())
	return nil
}
