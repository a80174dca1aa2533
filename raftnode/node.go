package raftnode

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/log"
	"github.com/theeye/theeye/raftnode/logstore"
)

// Errors returned by Node; callers test them with errors.Is (the API maps
// each to a 503).
var (
	// ErrNotLeader is returned by writes on a node that is not the leader.
	ErrNotLeader = errors.New("raftnode: not the leader")
	// ErrNoLeader is returned when the cluster has no known leader.
	ErrNoLeader = errors.New("raftnode: no leader")
	// ErrClosed is returned once Close has begun.
	ErrClosed = errors.New("raftnode: closed")
)

// logCacheEntries is the size of the raft.LogCache in front of the log store.
const logCacheEntries = 128

// Config configures a Node.
type Config struct {
	NodeID        string // unique, stable name of this node (e.g. "n1")
	Dir           string // the node's data dir: raft/ (log store), snapshots/, state.json
	RaftAddr      string // Raft listen address (host:port; port 0 picks one)
	AdvertiseRaft string // Raft address others dial, when it differs from RaftAddr
	HTTPAddr      string // HTTP address others use to reach this node (replicated)
	// ClusterKey, when set, is the secret every Raft connection proves it
	// knows (an HMAC challenge) before Raft sees a byte of it.
	ClusterKey string
	// TLS, when set, wraps Raft connections in mutual TLS (it must hold a
	// certificate, and RootCAs/ClientCAs for the peers).
	TLS       *tls.Config
	Bootstrap bool // start a new cluster with this node as its only voter, if Dir holds none

	// AdminKeyHash, when set on the node that bootstraps, is registered as
	// the replicated key "admin" by the cluster's seed command, which is
	// applied once per cluster (a later start never registers it again).
	AdminKeyHash string
	// SeedConfig is the first cluster config of a cluster this node
	// bootstraps (from its flags); later starts and other nodes ignore it.
	// The zero value stands for theeye.DefaultClusterConfig.
	SeedConfig theeye.ClusterConfig

	Log *log.Log // the event log the FSM appends to (owned by the caller)
	// PebbleFS is the file system of the Raft log store's Pebble; nil is
	// the OS's. The server passes log.NoReuseFS, so no WAL file is written
	// over in place (an erased event must leave every file).
	PebbleFS vfs.FS
	Codec    log.Codec // how event payloads are compressed in Raft entries and frames

	// Group commit bounds: concurrent Append calls coalesce into one Raft
	// entry of at most MaxBatchEvents events / MaxBatchBytes bytes, with at
	// most MaxInflight entries between raft.Apply and commit.
	MaxBatchEvents int
	MaxBatchBytes  int
	MaxInflight    int

	ApplyTimeout time.Duration // bound on one raft.Apply; default 30s

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Fatal is called when applying a committed entry fails in a way no
	// retry mends (a failed fsync of log/); the node must not go on past a
	// hole. Default: panic. Failed writes are retried instead (retryIO).
	Fatal func(error)
	// Raft, when set, is used as the base Raft configuration.
	Raft *raft.Config
}

// DefaultRaftConfig is the Raft configuration The Eye runs with: the
// library's timeouts (CALIBRATION.md: they held under heavy load), batched
// appends, and a snapshot cadence sized for entries of up to ~1000 events.
func DefaultRaftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.NoSnapshotRestoreOnStart = true
	c.BatchApplyCh = true
	c.MaxAppendEntries = 64
	c.TrailingLogs = 2048
	c.SnapshotThreshold = 4096
	c.SnapshotInterval = 30 * time.Second
	return c
}

func (c *Config) setDefaults() {
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = 1000
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 1 << 20
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 4
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 30 * time.Second
	}
	if c.SeedConfig == (theeye.ClusterConfig{}) {
		c.SeedConfig = theeye.DefaultClusterConfig()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Fatal == nil {
		c.Fatal = func(err error) { panic(err) }
	}
}

// Node owns this member's Raft instance, its log store, snapshot store and
// transport, the replicated state, and the group committer that turns
// concurrent ingest requests into Raft entries.
type Node struct {
	cfg    Config
	logger *slog.Logger
	log    *log.Log
	state  *stateStore
	m      *metrics

	raft     *raft.Raft
	trans    *raft.NetworkTransport
	logStore *logstore.Store
	snaps    *snapshotStore
	raftAddr string
	raftBind string // the address the Raft listener is bound to
	// appliedSeq is the last seq the FSM appended to log/.
	appliedSeq atomic.Uint64
	// catchUpTo is the commit index this node first learned from a
	// leader (0: not yet), caughtUp whether it has applied that far.
	catchUpTo atomic.Uint64
	caughtUp  atomic.Bool
	// queued counts the events of Append calls not answered yet.
	queued atomic.Int64
	// ioErr is why the FSM cannot write now (retryIO), nil when it can.
	ioErr atomic.Pointer[error]
	// purgedBelow reports how far the index has purged expired events
	// (SetPurgedBelow); nil until set.
	purgedBelow atomic.Pointer[func() uint64]
	// eraseIndex is the index's part of erasures (SetErasureIndex); nil
	// until set. eraseKick wakes the eraser when it is.
	eraseIndex atomic.Pointer[ErasureIndex]
	eraseKick  chan struct{}
	// offline is set on the node Recover builds: no Raft, and a failed
	// write fails the recovery instead of being retried.
	offline bool

	compressor *log.Compressor
	reqCh      chan *appendReq
	slots      chan struct{}  // one token per entry in flight
	pendingCh  chan *pending  // entries applied, in proposal order
	closing    chan struct{}  // closed when Close begins
	wg         sync.WaitGroup // committer, waiter, leader loop
	closeOnce  sync.Once
}

// Open starts the node: opens the Raft stores, the transport and Raft
// itself, bootstraps a new cluster when asked and the dir holds none, and
// starts the group committer.
func Open(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if cfg.NodeID == "" || cfg.Dir == "" || cfg.Log == nil {
		return nil, errors.New("raftnode: NodeID, Dir and Log are required")
	}
	n := &Node{
		cfg:       cfg,
		logger:    cfg.Logger.With("component", "raft"),
		log:       cfg.Log,
		reqCh:     make(chan *appendReq, 4096),
		eraseKick: make(chan struct{}, 1),
		slots:     make(chan struct{}, cfg.MaxInflight),
		closing:   make(chan struct{}),
	}
	n.pendingCh = make(chan *pending, cfg.MaxInflight)
	n.appliedSeq.Store(cfg.Log.LastSeq())
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Dir, err)
	}
	var err error
	if n.state, err = openStateStore(cfg.Dir); err != nil {
		return nil, err
	}
	if n.compressor, err = log.NewCompressor(); err != nil {
		return nil, fmt.Errorf("compressor: %w", err)
	}
	n.m = newMetrics(n, cfg.Registerer)
	if err := n.openRaft(); err != nil {
		n.compressor.Close()
		return nil, err
	}
	n.wg.Add(5)
	go n.commitLoop()
	go n.waitLoop()
	go n.leaderLoop()
	go n.retentionLoop()
	go n.eraseLoop()
	return n, nil
}

func (n *Node) openRaft() error {
	cfg := n.cfg
	rc := cfg.Raft
	if rc == nil {
		rc = DefaultRaftConfig()
	}
	rcCopy := *rc
	rc = &rcCopy
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = newHCLog(n.logger)
	rc.NoSnapshotRestoreOnStart = true

	var err error
	n.logStore, err = logstore.Open(logstore.Config{Dir: filepath.Join(cfg.Dir, "raft"), Logger: n.logger, FS: cfg.PebbleFS})
	if err != nil {
		return fmt.Errorf("open raft log store: %w", err)
	}
	if err := recordNodeID(n.logStore, cfg.NodeID); err != nil {
		n.logStore.Close()
		return err
	}
	fss, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, newHCLog(n.logger))
	if err != nil {
		n.logStore.Close()
		return fmt.Errorf("open snapshot store: %w", err)
	}
	snaps := &snapshotStore{FileSnapshotStore: fss, log: cfg.Log}
	n.snaps = snaps
	if err := n.checkAgainstSnapshot(snaps); err != nil {
		n.logStore.Close()
		return err
	}
	n.appliedSeq.Store(cfg.Log.LastSeq())
	stream, err := newStreamLayer(cfg.RaftAddr, cfg.AdvertiseRaft, []byte(cfg.ClusterKey), cfg.TLS, n.logger)
	if err != nil {
		n.logStore.Close()
		return err
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: newHCLog(n.logger),
	})
	n.raftAddr = string(n.trans.LocalAddr())
	n.raftBind = stream.ln.Addr().String()

	existing, err := raft.HasExistingState(n.logStore, n.logStore, snaps)
	if err != nil {
		n.closeStores()
		return fmt.Errorf("check raft state: %w", err)
	}
	// A cache of the newest entries in front of the store: replication
	// reads each entry once per follower right after it is written. Two
	// AppendEntries rounds (MaxAppendEntries 64) of entries up to
	// MaxBatchBytes each: the cache is part of the node's memory budget.
	cached, err := raft.NewLogCache(logCacheEntries, n.logStore)
	if err != nil {
		n.closeStores()
		return fmt.Errorf("raft log cache: %w", err)
	}
	n.raft, err = raft.NewRaft(rc, fsm{n}, cached, n.logStore, snaps, n.trans)
	if err != nil {
		n.closeStores()
		return fmt.Errorf("start raft: %w", err)
	}
	switch {
	case cfg.Bootstrap && !existing:
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(n.raftAddr),
		}}}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
			n.raft.Shutdown()
			n.closeStores()
			return fmt.Errorf("bootstrap cluster: %w", err)
		}
		n.logger.Info("bootstrapped a new cluster", "node", cfg.NodeID, "raft", n.raftAddr)
	case cfg.Bootstrap:
		n.logger.Info("data dir already holds a cluster; --bootstrap ignored", "dir", cfg.Dir)
	}
	return nil
}

// nodeIDKey is the stable-store key under which a node records its id at
// every start (Open), so that Recover can tell whose data dir it holds.
const nodeIDKey = "TheEyeNodeID"

// recordNodeID stores id under nodeIDKey unless it is there already.
func recordNodeID(ls *logstore.Store, id string) error {
	old, err := ls.Get([]byte(nodeIDKey))
	if err == nil && string(old) == id {
		return nil
	}
	if err != nil && !errors.Is(err, logstore.ErrKeyNotFound) {
		return fmt.Errorf("read the recorded node id: %w", err)
	}
	if err := ls.Set([]byte(nodeIDKey), []byte(id)); err != nil {
		return fmt.Errorf("record the node id: %w", err)
	}
	return nil
}

func (n *Node) closeStores() {
	n.trans.Close()
	n.logStore.Close()
}

// Close stops accepting writes, finishes the entries in flight, shuts
// Raft down and closes its stores. It does not close log/ (the caller's).
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		close(n.closing)
		n.wg.Wait()
		if e := n.raft.Shutdown().Error(); e != nil {
			err = fmt.Errorf("shut down raft: %w", e)
		}
		if e := n.trans.Close(); e != nil && err == nil {
			err = fmt.Errorf("close transport: %w", e)
		}
		if e := n.logStore.Close(); e != nil && err == nil {
			err = fmt.Errorf("close raft log store: %w", e)
		}
		n.compressor.Close()
	})
	return err
}

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr returns the Raft address this node listens on (resolved when
// the configured port was 0).
func (n *Node) RaftAddr() string { return n.raftAddr }

// RaftListenAddr returns the address the Raft listener is bound to (the
// real port when the configured one was 0).
func (n *Node) RaftListenAddr() string { return n.raftBind }

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the id of the current leader and its HTTP address (from
// the replicated state), or empty strings when no leader is known.
func (n *Node) Leader() (id, httpAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	return string(lid), n.state.get().Nodes[string(lid)].HTTPAddr
}

// WaitForLeader blocks until a leader is known or ctx ends.
func (n *Node) WaitForLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := n.raft.LeaderWithID(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for leader: %w", ctx.Err())
		case <-n.closing:
			return ErrClosed
		case <-t.C:
		}
	}
}

// AppliedSeq returns the last seq this node's FSM appended to log/.
func (n *Node) AppliedSeq() uint64 { return n.appliedSeq.Load() }

// LookupKey finds a live key by the hash of its secret.
func (n *Node) LookupKey(hash string) (theeye.Key, bool) { return n.state.lookupKey(hash) }

// Apps lists the replicated apps, sorted by id.
func (n *Node) Apps() []theeye.App { return n.state.apps() }

// Keys lists the replicated keys (hashes only), sorted by id.
func (n *Node) Keys() []theeye.Key { return n.state.keys() }

// Nodes returns the replicated node addresses by id.
func (n *Node) Nodes() map[string]NodeInfo { return n.state.get().Nodes }

// Stats is a point-in-time view of the node for /v1/cluster and /readyz.
type Stats struct {
	State      string // leader, follower, candidate, shutdown
	AppliedSeq uint64
	Servers    []ServerInfo
}

// ServerInfo is one member of the Raft configuration.
type ServerInfo struct {
	ID       string
	RaftAddr string
	HTTPAddr string
	Suffrage string
}

// Stats returns this node's view of the cluster.
func (n *Node) Stats() (Stats, error) {
	st := Stats{State: n.raft.State().String(), AppliedSeq: n.AppliedSeq()}
	fut := n.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return st, fmt.Errorf("get raft configuration: %w", err)
	}
	nodes := n.state.get().Nodes
	for _, s := range fut.Configuration().Servers {
		st.Servers = append(st.Servers, ServerInfo{
			ID: string(s.ID), RaftAddr: string(s.Address),
			HTTPAddr: nodes[string(s.ID)].HTTPAddr, Suffrage: s.Suffrage.String(),
		})
	}
	return st, nil
}

// applyCommand replicates a configuration change and returns the FSM's
// verdict (a *theeye.Error for a refused change). Leader only.
func (n *Node) applyCommand(ctx context.Context, cmd *command) error {
	_, err := applyConfig[any](ctx, n, cmd)
	return err
}

// CreateApp registers app with its first key (a *theeye.Error with code
// EConflict when the name or the key id is taken). Leader only.
func (n *Node) CreateApp(ctx context.Context, app theeye.App, key theeye.Key) error {
	return n.applyCommand(ctx, &command{Op: opCreateApp, App: &app, Key: &key})
}

// CreateKey registers key (EConflict for a taken id, ENotFound for an app
// that does not exist). Leader only.
func (n *Node) CreateKey(ctx context.Context, key theeye.Key) error {
	return n.applyCommand(ctx, &command{Op: opCreateKey, Key: &key})
}

// SetRateLimit sets the rate limit of the key with id, or clears it with
// nil (ENotFound when there is no such key). Leader only.
func (n *Node) SetRateLimit(ctx context.Context, id string, rl *theeye.RateLimit) error {
	return n.applyCommand(ctx, &command{Op: opSetRateLimit, KeyID: id, RateLimit: rl})
}

// RevokeKey revokes the key with id (ENotFound when there is none,
// EConflict for the last admin key). Leader only.
func (n *Node) RevokeKey(ctx context.Context, id string) error {
	return n.applyCommand(ctx, &command{Op: opRevokeKey, KeyID: id})
}

// PutSchema registers the next version of s's category + name and returns
// it as the FSM numbered it. A schema that does not compile is a
// *theeye.Error with code EInvalidRequest. Leader only.
func (n *Node) PutSchema(ctx context.Context, s theeye.Schema) (theeye.Schema, error) {
	return applyConfig[theeye.Schema](ctx, n, &command{Op: opPutSchema, Schema: &s})
}

// Revalidate records a revalidation request and returns it with its ID and
// AtSeq. Every node's indexer runs it when it reaches AtSeq. Leader only.
func (n *Node) Revalidate(ctx context.Context, r theeye.Revalidation) (theeye.Revalidation, error) {
	return applyConfig[theeye.Revalidation](ctx, n, &command{Op: opRevalidate, Revalidation: &r})
}

// applyConfig replicates cmd and returns the value the FSM answered with
// (the zero T when it answered none).
func applyConfig[T any](ctx context.Context, n *Node, cmd *command) (T, error) {
	var v T
	data, err := encodeConfigEntry(cmd)
	if err != nil {
		return v, err
	}
	res, err := n.apply(ctx, data)
	if err != nil {
		return v, err
	}
	v, _ = res.value.(T)
	return v, nil
}

// Schemas returns the latest version of every schema, ordered by category
// and name.
func (n *Node) Schemas() []theeye.Schema {
	st := n.state.get()
	out := make([]theeye.Schema, 0, len(st.Schemas))
	for _, vs := range st.Schemas {
		if len(vs) > 0 {
			out = append(out, vs[len(vs)-1])
		}
	}
	slices.SortFunc(out, func(a, b theeye.Schema) int {
		if c := cmp.Compare(a.Category, b.Category); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

// SchemaVersions returns every version of category + name's schema, in
// version order (nil when none). The slice is shared: do not modify it.
func (n *Node) SchemaVersions(category, name string) []theeye.Schema {
	return n.state.get().Schemas[schemaKey(category, name)]
}

// ConfigVersions returns every version of the cluster config, in order.
// The slice is shared: do not modify it.
func (n *Node) ConfigVersions() []theeye.ConfigVersion { return n.state.get().Configs }

// Config returns the cluster config in force now, as applied on this node.
func (n *Node) Config() theeye.ClusterConfig { return n.state.get().config() }

// SetConfig changes fields of the cluster config and returns the whole new
// config as the FSM applied it (a *theeye.Error naming the field for a bad
// value). Leader only.
func (n *Node) SetConfig(ctx context.Context, p theeye.ConfigPatch) (theeye.ClusterConfig, error) {
	return applyConfig[theeye.ClusterConfig](ctx, n, &command{Op: opSetConfig, Config: &p})
}

// Revalidations returns the revalidation requests with ID > after, in ID
// order. The slice is shared: do not modify it.
func (n *Node) Revalidations(after uint64) []theeye.Revalidation {
	rs := n.state.get().Revalidations
	i, _ := slices.BinarySearchFunc(rs, after+1, func(r theeye.Revalidation, id uint64) int { return cmp.Compare(r.ID, id) })
	return rs[i:]
}

// ConfigChanged returns a channel closed at the next change of the
// replicated configuration.
func (n *Node) ConfigChanged() <-chan struct{} { return n.state.changedCh() }

// apply is the one path to raft.Apply for single entries: it checks
// leadership, bounds the wait by ctx, and unwraps both the future's error
// and the error inside its response (hashicorp/consul#9970).
func (n *Node) apply(ctx context.Context, data []byte) (applyResult, error) {
	select {
	case <-n.closing:
		return applyResult{}, ErrClosed
	default:
	}
	if !n.IsLeader() {
		return applyResult{}, ErrNotLeader
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	fut := n.raft.Apply(data, timeout)
	done := make(chan struct{})
	var ferr error
	go func() { ferr = fut.Error(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return applyResult{}, fmt.Errorf("raft apply: %w", ctx.Err())
	}
	if ferr != nil {
		return applyResult{}, raftErr(ferr)
	}
	res, _ := fut.Response().(applyResult)
	return res, res.err
}

// raftErr maps hashicorp/raft errors onto ours.
func raftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("raft apply: %w", err)
}

// AddVoter adds a node to the cluster and records its addresses. Leader only.
func (n *Node) AddVoter(ctx context.Context, info NodeInfo) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if err := n.raft.AddVoter(raft.ServerID(info.ID), raft.ServerAddress(info.RaftAddr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return raftErr(err)
	}
	return n.applyCommand(ctx, &command{Op: opSetNode, Node: &info})
}

// RemoveServer removes a node from the cluster. Leader only.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return raftErr(err)
	}
	return n.applyCommand(ctx, &command{Op: opDelNode, NodeID: id})
}

// Snapshot asks Raft for a snapshot now (tests and operators).
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// leaderLoop makes sure, whenever this node leads, that the replicated
// state has this node's addresses and (on the bootstrap node) the
// cluster's seed: idempotent config entries. It also counts leader changes
// for the metrics.
func (n *Node) leaderLoop() {
	defer n.wg.Done()
	ch := n.raft.LeaderCh()
	obs := make(chan raft.Observation, 16)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(observer)
	defer n.raft.DeregisterObserver(observer)
	check := time.NewTicker(500 * time.Millisecond)
	defer check.Stop()
	done := false
	for {
		select {
		case <-n.closing:
			return
		case <-obs:
			n.m.leaderChanges.Inc()
			continue
		case <-ch:
			done = false
		case <-check.C:
		}
		if done || !n.IsLeader() {
			continue
		}
		done = n.leaderTasks() == nil
	}
}

func (n *Node) leaderTasks() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := n.state.get()
	me := NodeInfo{ID: n.cfg.NodeID, RaftAddr: n.raftAddr, HTTPAddr: n.cfg.HTTPAddr}
	if st.Nodes[me.ID] != me {
		if err := n.applyCommand(ctx, &command{Op: opSetNode, Node: &me}); err != nil {
			n.logger.Warn("recording node address", "err", err)
			return err
		}
	}
	if n.cfg.Bootstrap && !st.Seeded {
		// A cluster of v1 registered its admin key without a seed: it is
		// seeded already (opSeed keeps an existing key as it is).
		seed := n.cfg.SeedConfig
		cmd := &command{Op: opSeed, Config: &theeye.ConfigPatch{MaxClockSkew: &seed.MaxClockSkew,
			MaxEventAge: &seed.MaxEventAge, UnknownTypes: &seed.UnknownTypes, Retention: &seed.Retention}}
		if n.cfg.AdminKeyHash != "" {
			cmd.Key = &theeye.Key{ID: "admin", Name: "admin", Scopes: []theeye.Scope{theeye.ScopeAdmin},
				Hash: n.cfg.AdminKeyHash, CreatedAt: time.Now().UTC()}
		}
		if err := n.applyCommand(ctx, cmd); err != nil && theeye.ErrorCode(err) != theeye.EConflict {
			n.logger.Warn("seeding the cluster", "err", err)
			return err
		}
	}
	return nil
}

// Seeded reports whether the replicated state holds the cluster's seed
// (its admin key and first policy), as applied on this node.
func (n *Node) Seeded() bool { return n.state.get().Seeded }

// retryIO runs op, a write of store's, until it succeeds, the error is one
// a retry cannot mend (log.ErrFailed: it is returned), or the node closes
// (ErrClosed). Meanwhile the node is unhealthy (Healthy says why, /readyz
// with it), each new cause is logged once, and a leader hands its
// leadership to a member that can write. On an offline node (Recover) the
// first failure is returned, Healthy keeping it.
func (n *Node) retryIO(store string, op func() error) error {
	backoff := 50 * time.Millisecond
	var last string
	transferred := false
	for {
		err := op()
		if err == nil {
			if last != "" {
				n.ioErr.Store(nil)
				n.logger.Info("writes work again", "store", store)
			}
			return nil
		}
		if errors.Is(err, log.ErrFailed) || errors.Is(err, log.ErrClosed) {
			return err
		}
		werr := fmt.Errorf("cannot write its %s store: %w", store, err)
		n.ioErr.Store(&werr)
		n.m.ioErrors.WithLabelValues(store).Inc()
		if n.offline {
			return werr
		}
		if msg := err.Error(); msg != last {
			n.logger.Error("write failed; retrying until it succeeds (the node is unready meanwhile)", "store", store, "err", err)
			last = msg
		}
		if !transferred && n.IsLeader() {
			transferred = true
			if ferr := n.raft.LeadershipTransfer().Error(); ferr != nil {
				n.logger.Warn("could not hand leadership over while writes fail", "err", ferr)
			}
		}
		select {
		case <-n.closing:
			return ErrClosed
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// CatchingUp returns why this node should not serve yet, or nil: it has
// not applied what the cluster had committed when it first heard from a
// leader after it started (a node that just joined, or restarted behind
// the others). Until then it may not know keys, apps or schemas the
// cluster has, and would answer 401 for a valid key. Once caught up it
// stays so: a lag under load is the flow control's business.
func (n *Node) CatchingUp() error {
	if n.caughtUp.Load() {
		return nil
	}
	commit := n.raft.CommitIndex()
	if _, id := n.raft.LeaderWithID(); id == "" || commit == 0 {
		return errors.New("no commit index learned from a leader yet")
	}
	n.catchUpTo.CompareAndSwap(0, commit)
	target, applied := n.catchUpTo.Load(), n.raft.AppliedIndex()
	if applied < target {
		return fmt.Errorf("applying the cluster's log: at Raft index %d of %d", applied, target)
	}
	n.caughtUp.Store(true)
	return nil
}

// Healthy returns why this node cannot write its stores now, or nil.
func (n *Node) Healthy() error {
	if e := n.ioErr.Load(); e != nil {
		return *e
	}
	return nil
}

// State returns this node's Raft state (Leader, Follower, Candidate,
// Shutdown).
func (n *Node) State() string { return n.raft.State().String() }

func (n *Node) fatal(err error) {
	n.logger.Error("fatal: stopping the node", "err", err)
	n.cfg.Fatal(err)
}
