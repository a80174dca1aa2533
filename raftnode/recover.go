package raftnode

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye/log"
	"github.com/theeye/theeye/raftnode/logstore"
)

// Recovery from a lost quorum. A cluster that has lost a majority of its
// voters for good cannot elect a leader, so no configuration change can
// ever be committed again. Recover, run offline on one survivor's data
// dir, replays every entry its Raft log store holds through The Eye's FSM
// (raft.RecoverCluster), snapshots, and writes a configuration with this
// node as the only voter; started again, it elects itself.

// Errors returned by Recover; callers test them with errors.Is.
var (
	// ErrNoCluster: the dir holds no Raft state (a wrong --data-dir, or a
	// node that never joined a cluster).
	ErrNoCluster = errors.New("the data dir holds no cluster")
	// ErrInUse: a process holds the dir's Raft log store open (a node
	// running on it).
	ErrInUse = errors.New("the data dir is in use")
	// ErrUnknownNode: which member the dir belongs to cannot be told, or
	// the id given is not a member of the configuration it holds.
	ErrUnknownNode = errors.New("cannot tell which node this data dir belongs to")
)

// RecoverConfig configures Recover.
type RecoverConfig struct {
	Dir    string // the node's Raft dir, as Config.Dir: raft/, snapshots/, state.json
	LogDir string // its event log, which the FSM appends to
	// NodeID is this node's id. Empty: the id the node recorded when it
	// last ran, else the member whose Raft address is AdvertiseRaft or
	// RaftAddr.
	NodeID string
	// AdvertiseRaft, else RaftAddr, is this node's Raft address in the new
	// configuration (as Config's); both empty: the address the old
	// configuration has for it.
	RaftAddr      string
	AdvertiseRaft string
	// DryRun reports what Recover finds and would do, and changes nothing.
	DryRun bool
	Logger *slog.Logger
}

// RecoverReport is what Recover found and did.
type RecoverReport struct {
	NodeID string
	// NodeIDFrom says how NodeID was told: "flag", "recorded" (by the node
	// in its dir) or "address" (the member at the Raft address given).
	NodeIDFrom string
	RecordedID string // the id recorded in the dir, "" when none
	RaftAddr   string // this node's address in the new configuration
	HTTPAddr   string // its HTTP address, from the replicated state
	// LastIndex and LastTerm are the last Raft entry the node holds: after
	// a recovery, the position of its snapshot with the new configuration.
	LastIndex, LastTerm uint64
	// LastSeq is the last seq of its event log (applied_seq) and Replayed
	// how many events the replay appended to it: entries the log store
	// held but the FSM had not applied (committed or not).
	LastSeq, Replayed uint64
	Members           []ServerInfo // the configuration the dir held
	Removed           []ServerInfo // the members the recovery removed from it
	// Forgotten lists the nodes whose addresses were removed from the
	// replicated state (State.Nodes): those not in the new configuration.
	Forgotten []string
	DryRun    bool
}

// Recover makes the node whose data dir cfg names the only voter of its
// cluster, keeping every entry it holds: raft.RecoverCluster replays the
// entries of the log store through the FSM (which skips what log/ and
// state.json hold already), takes a snapshot that also carries a
// configuration of this node alone, and compacts the log store. The
// replicated state forgets the addresses of the nodes removed. It refuses
// a dir with no cluster (ErrNoCluster), one a process holds (ErrInUse) and
// a node it cannot identify (ErrUnknownNode). The caller must not run a
// node on the dir meanwhile; its log store's lock makes sure of it.
func Recover(cfg RecoverConfig) (rep RecoverReport, err error) {
	rep.DryRun = cfg.DryRun
	if cfg.Dir == "" || cfg.LogDir == "" {
		return rep, errors.New("raftnode: recover: Dir and LogDir are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := openRecoverStores(cfg)
	if err != nil {
		return rep, err
	}
	defer func() {
		if cerr := st.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	old, err := raft.GetConfiguration(st.raftConfig("recover"), fsm{st.n}, st.logs, st.logs, st.snaps, st.trans)
	if err != nil {
		return rep, fmt.Errorf("read the raft configuration: %w", err)
	}
	for _, s := range old.Servers {
		rep.Members = append(rep.Members, ServerInfo{ID: string(s.ID), RaftAddr: string(s.Address),
			HTTPAddr: st.n.state.get().Nodes[string(s.ID)].HTTPAddr, Suffrage: s.Suffrage.String()})
	}
	if err := resolveNode(cfg, st.logs, rep.Members, &rep); err != nil {
		return rep, err
	}
	for _, m := range rep.Members {
		if m.ID != rep.NodeID {
			rep.Removed = append(rep.Removed, m)
		}
	}
	rep.HTTPAddr = st.n.state.get().Nodes[rep.NodeID].HTTPAddr
	before := st.n.log.LastSeq()
	if cfg.DryRun {
		rep.LastIndex, rep.LastTerm, err = lastEntry(st.logs, st.snaps)
		rep.LastSeq = before
		rep.Forgotten = st.n.forgettable(rep.NodeID)
		return rep, err
	}

	rf := &recoverFSM{n: st.n, keep: rep.NodeID}
	st.n.cfg.Fatal = func(err error) { rf.fail(err) }
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(rep.NodeID), Address: raft.ServerAddress(rep.RaftAddr)}}}
	if err := raft.RecoverCluster(st.raftConfig(rep.NodeID), rf, st.logs, st.logs, st.snaps, st.trans, conf); err != nil {
		return rep, fmt.Errorf("recover the cluster: %w", err)
	}
	rep.Forgotten = rf.forgotten
	rep.LastSeq = st.n.log.LastSeq()
	rep.Replayed = rep.LastSeq - before
	if rep.LastIndex, rep.LastTerm, err = lastEntry(st.logs, st.snaps); err != nil {
		return rep, err
	}
	st.n.logger.Info("recovered: this node is the only voter of its cluster", "node", rep.NodeID, "raft", rep.RaftAddr,
		"last_index", rep.LastIndex, "last_term", rep.LastTerm, "last_seq", rep.LastSeq, "replayed_events", rep.Replayed)
	return rep, nil
}

// recoverStores is what Recover opens: the stores and dirs Open uses, an
// in-memory transport (RecoverCluster only asks it to encode addresses),
// and a node without Raft for the FSM.
type recoverStores struct {
	logs  *logstore.Store
	snaps *snapshotStore
	log   *log.Log
	trans *raft.InmemTransport
	n     *Node
}

// openRecoverStores opens the log store first: its lock tells a dir a
// running node holds before anything else of the dir is touched (log/'s
// Open recovers its tail).
func openRecoverStores(cfg RecoverConfig) (_ *recoverStores, err error) {
	logger := cfg.Logger.With("component", "raft")
	storeDir := filepath.Join(cfg.Dir, "raft")
	if _, err := os.Stat(storeDir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no Raft log store at %s", ErrNoCluster, storeDir)
	} else if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	st := &recoverStores{}
	defer func() {
		if err != nil {
			_ = st.close()
		}
	}()
	if st.logs, err = logstore.Open(logstore.Config{Dir: storeDir, Logger: logger}); err != nil {
		if isLocked(err) {
			return nil, fmt.Errorf("%w: another process holds %s (a theeye node running on it? stop it first): %w", ErrInUse, storeDir, err)
		}
		return nil, fmt.Errorf("open raft log store: %w", err)
	}
	fss, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, newHCLog(logger))
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	st.snaps = &snapshotStore{FileSnapshotStore: fss}
	existing, err := raft.HasExistingState(st.logs, st.logs, st.snaps)
	if err != nil {
		return nil, fmt.Errorf("check raft state: %w", err)
	}
	if !existing {
		return nil, fmt.Errorf("%w: the Raft log store at %s holds no term and no entry, and there is no snapshot", ErrNoCluster, storeDir)
	}
	l, err := log.Open(cfg.LogDir, log.Config{Logger: cfg.Logger})
	if err != nil {
		if isLocked(err) {
			return nil, fmt.Errorf("%w: another process holds %s: %w", ErrInUse, cfg.LogDir, err)
		}
		return nil, fmt.Errorf("open log: %w", err)
	}
	st.log, st.snaps.log = l, l
	st.n = &Node{cfg: Config{Dir: cfg.Dir, Log: l, Logger: cfg.Logger}, logger: logger, log: l,
		closing: make(chan struct{}), offline: true}
	st.n.cfg.setDefaults()
	st.n.appliedSeq.Store(l.LastSeq())
	st.n.m = newMetrics(st.n, nil)
	if st.n.state, err = openStateStore(cfg.Dir); err != nil {
		return nil, err
	}
	_, st.trans = raft.NewInmemTransport("")
	return st, nil
}

// close closes what openRecoverStores opened; the error is the log's or
// the log store's.
func (st *recoverStores) close() error {
	var errs []error
	if st.trans != nil {
		st.trans.Close()
	}
	if st.log != nil {
		if err := st.log.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close log: %w", err))
		}
	}
	if st.logs != nil {
		if err := st.logs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// raftConfig is the Raft configuration RecoverCluster validates.
func (st *recoverStores) raftConfig(id string) *raft.Config {
	rc := DefaultRaftConfig()
	rc.LocalID = raft.ServerID(id)
	rc.Logger = newHCLog(st.n.logger)
	return rc
}

// isLocked reports whether err is a failure to take a store's lock file:
// another process holds it (fcntl's EAGAIN on Linux), or this one.
func isLocked(err error) bool {
	return errors.Is(err, syscall.EAGAIN) ||
		strings.Contains(err.Error(), "lock held by current process") // Pebble's vfs, in-process
}

// resolveNode sets rep's NodeID (and how it was told) and RaftAddr.
func resolveNode(cfg RecoverConfig, ls *logstore.Store, members []ServerInfo, rep *RecoverReport) error {
	recorded, err := ls.Get([]byte(nodeIDKey))
	if err != nil && !errors.Is(err, logstore.ErrKeyNotFound) {
		return fmt.Errorf("read the recorded node id: %w", err)
	}
	rep.RecordedID = string(recorded)
	switch {
	case cfg.NodeID != "":
		rep.NodeID, rep.NodeIDFrom = cfg.NodeID, "flag"
	case rep.RecordedID != "":
		rep.NodeID, rep.NodeIDFrom = rep.RecordedID, "recorded"
	default:
		for _, addr := range []string{cfg.AdvertiseRaft, cfg.RaftAddr} {
			if i := slices.IndexFunc(members, func(m ServerInfo) bool { return addr != "" && m.RaftAddr == addr }); i >= 0 {
				rep.NodeID, rep.NodeIDFrom = members[i].ID, "address"
				break
			}
		}
	}
	if rep.NodeID == "" {
		return fmt.Errorf("%w: it records no node id (a node of an older version) and no member has the Raft address given; give --node-id (members: %s)", ErrUnknownNode, describeMembers(members))
	}
	i := slices.IndexFunc(members, func(m ServerInfo) bool { return m.ID == rep.NodeID })
	if i < 0 {
		return fmt.Errorf("%w: node %q is not a member of the configuration this dir holds (members: %s)", ErrUnknownNode, rep.NodeID, describeMembers(members))
	}
	rep.RaftAddr, err = recoverAddr(cfg, members[i].RaftAddr)
	return err
}

// recoverAddr is this node's Raft address in the new configuration:
// AdvertiseRaft, else RaftAddr (when others can dial it), else old.
func recoverAddr(cfg RecoverConfig, old string) (string, error) {
	addr, flag := cfg.AdvertiseRaft, "--advertise-raft"
	if addr == "" {
		addr, flag = cfg.RaftAddr, "--raft"
	}
	if addr == "" {
		return old, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	if port == "0" || flag == "--raft" && (host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified()) {
		return "", fmt.Errorf("%s %q is not an address other nodes can dial: give --advertise-raft (or neither, to keep %s)", flag, addr, old)
	}
	return addr, nil
}

func describeMembers(members []ServerInfo) string {
	if len(members) == 0 {
		return "none"
	}
	parts := make([]string, len(members))
	for i, m := range members {
		parts[i] = m.ID + " at " + m.RaftAddr
	}
	return strings.Join(parts, ", ")
}

// lastEntry is the last Raft entry the stores hold: the log store's last,
// or the newest snapshot's position when that is further.
func lastEntry(ls *logstore.Store, snaps raft.SnapshotStore) (index, term uint64, err error) {
	list, err := snaps.List()
	if err != nil {
		return 0, 0, fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) > 0 {
		index, term = list[0].Index, list[0].Term
	}
	last, err := ls.LastIndex()
	if err != nil {
		return 0, 0, fmt.Errorf("raft log last index: %w", err)
	}
	if last > index {
		var e raft.Log
		if err := ls.GetLog(last, &e); err != nil {
			return 0, 0, fmt.Errorf("raft log entry %d: %w", last, err)
		}
		index, term = e.Index, e.Term
	}
	return index, term, nil
}

// forgettable lists the nodes of the replicated state other than keep.
func (n *Node) forgettable(keep string) []string {
	var ids []string
	for id := range n.state.get().Nodes {
		if id != keep {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, cmp.Compare[string])
	return ids
}

// recoverFSM is the FSM RecoverCluster replays through: the node's own
// (so log/ and state.json end up as a normal apply leaves them), with two
// differences. The first write that fails stops the replay and fails the
// snapshot, so RecoverCluster returns before it compacts the log store
// (it ignores what Apply returns). And before the snapshot the replicated
// state forgets the addresses of the nodes the new configuration leaves
// out, so the snapshot a new member installs carries the same state.
type recoverFSM struct {
	n         *Node
	keep      string // the one node of the new configuration
	err       error  // the first failed write
	forgotten []string
}

func (f *recoverFSM) fail(err error) {
	if f.err == nil {
		f.err = err
	}
}

func (f *recoverFSM) Apply(l *raft.Log) any {
	if f.err != nil {
		return nil // never apply past an entry that failed
	}
	res := f.n.fsmApply(l)
	if err := f.n.Healthy(); err != nil {
		f.fail(fmt.Errorf("apply entry %d: %w", l.Index, err))
	}
	return res
}

func (f *recoverFSM) Snapshot() (raft.FSMSnapshot, error) {
	if f.err != nil {
		return nil, fmt.Errorf("replay stopped: %w", f.err)
	}
	if ids := f.n.forgettable(f.keep); len(ids) > 0 {
		next := f.n.state.get().clone()
		for _, id := range ids {
			delete(next.Nodes, id)
		}
		if err := f.n.state.save(next); err != nil {
			return nil, fmt.Errorf("forget the removed nodes' addresses: %w", err)
		}
		f.forgotten = ids
	}
	return f.n.fsmSnapshot()
}

func (f *recoverFSM) Restore(rc io.ReadCloser) error { return f.n.fsmRestore(rc) }
