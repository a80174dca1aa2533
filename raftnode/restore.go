package raftnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye/log"
	"github.com/theeye/theeye/raftnode/logstore"
)

// Restoring a backup (backup.go) into a new node's dirs, offline. The
// result is a one-node cluster holding the backup's events under the same
// seqs and its replicated state, whose Raft starts above the backup's
// Raft index: log/'s frames carry the source's Raft indexes and the FSM
// skips an entry whose index is at or below log/'s last one, so new
// entries must come after them. Restore therefore writes, besides log/
// and state.json, a Raft snapshot at the backup's index and term whose
// configuration holds only the new node (its meta line is what Persist
// writes: a position and the state, no events), and records the term in
// the stable store. Raft opens from that snapshot (NoSnapshotRestoreOnStart:
// it takes it as applied), elects the node in the next term and appends
// after the backup's index; log/ appends after its last seq.

// raftCurrentTermKey is the stable-store key under which hashicorp/raft
// keeps its current term (raft.go, keyCurrentTerm; unexported there).
// TestRestoredNodeTakesWrites pins that the restored node starts in a
// later term than the backup's.
const raftCurrentTermKey = "CurrentTerm"

// RestoreConfig configures Restore.
type RestoreConfig struct {
	From   io.Reader // the backup
	Dir    string    // the new node's Raft dir, as Config.Dir; empty or absent
	LogDir string    // its event log; empty or absent
	// NodeID and RaftAddr are the one voter of the new configuration: the
	// node must run with this id and this Raft address (advertised).
	NodeID   string
	RaftAddr string
	Logger   *slog.Logger
}

// RestoreReport is what Restore found in the backup and wrote.
type RestoreReport struct {
	BackupInfo
	NodeID, RaftAddr string
}

// Restore reads the backup cfg.From, checking every part of it (see
// VerifyBackup), into cfg's dirs: log/ holds its frames as they were,
// state.json its state (without the source's node addresses), and the Raft
// stores a snapshot at its index with cfg's node as the only voter. On an
// error the dirs hold a partial restore: the caller restores into dirs it
// removes unless Restore returns nil (theeye restore does).
func Restore(cfg RestoreConfig) (rep RestoreReport, err error) {
	rep.NodeID, rep.RaftAddr = cfg.NodeID, cfg.RaftAddr
	if cfg.From == nil || cfg.Dir == "" || cfg.LogDir == "" || cfg.NodeID == "" {
		return rep, errors.New("raftnode: restore: From, Dir, LogDir and NodeID are required")
	}
	if err := checkDialable(cfg.RaftAddr); err != nil {
		return rep, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, dir := range []string{cfg.Dir, cfg.LogDir} {
		if err := requireEmpty(dir); err != nil {
			return rep, err
		}
	}
	l, err := log.Open(cfg.LogDir, log.Config{Logger: cfg.Logger})
	if err != nil {
		return rep, fmt.Errorf("restore: open the event log: %w", err)
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("restore: close the event log: %w", cerr)
		}
	}()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return rep, fmt.Errorf("restore: %w", err)
	}
	n := &Node{cfg: Config{Dir: cfg.Dir, Log: l, Logger: cfg.Logger}, logger: cfg.Logger.With("component", "raft"),
		log: l, closing: make(chan struct{}), offline: true}
	if n.state, err = openStateStore(cfg.Dir); err != nil {
		return rep, err
	}
	rep.BackupInfo, err = readBackup(cfg.From, backupSink{
		start: func(info *BackupInfo) error {
			if info.FirstSeq > 1 { // the source's retention cut: seqs start there
				return l.Reset(info.FirstSeq)
			}
			return nil
		},
		frame: n.appendFrame,
	})
	if err != nil {
		return rep, err
	}
	if err := l.Sync(); err != nil {
		return rep, fmt.Errorf("restore: sync the event log: %w", err)
	}
	st := rep.State.clone()
	st.Apps, st.Keys, st.Schemas = orEmpty(st.Apps), orEmpty(st.Keys), orEmpty(st.Schemas)
	st.Nodes = map[string]NodeInfo{} // the source's members; this node records itself once it leads
	if err := n.state.save(st); err != nil {
		return rep, fmt.Errorf("restore: %w", err)
	}
	if err := writeRestoredRaft(cfg, rep.BackupInfo, snapshotMeta{LastSeq: l.LastSeq(), LastRaftIndex: l.LastRaftIndex(), State: st}); err != nil {
		return rep, err
	}
	n.logger.Info("restored a backup", "raft_index", rep.RaftIndex, "term", rep.RaftTerm, "first_seq", rep.FirstSeq,
		"last_seq", rep.LastSeq, "frames", rep.Frames, "node", cfg.NodeID, "raft", cfg.RaftAddr)
	return rep, nil
}

// writeRestoredRaft writes the Raft side of a restored node: the term and
// the node id in the stable store, and a snapshot at the backup's
// position whose configuration is this node alone.
func writeRestoredRaft(cfg RestoreConfig, info BackupInfo, sm snapshotMeta) error {
	logger := cfg.Logger.With("component", "raft")
	ls, err := logstore.Open(logstore.Config{Dir: filepath.Join(cfg.Dir, "raft"), Logger: logger})
	if err != nil {
		return fmt.Errorf("restore: open the raft log store: %w", err)
	}
	if err := ls.SetUint64([]byte(raftCurrentTermKey), info.RaftTerm); err != nil {
		ls.Close()
		return fmt.Errorf("restore: record the raft term: %w", err)
	}
	if err := recordNodeID(ls, cfg.NodeID); err != nil {
		ls.Close()
		return fmt.Errorf("restore: %w", err)
	}
	if err := ls.Close(); err != nil {
		return fmt.Errorf("restore: close the raft log store: %w", err)
	}
	fss, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, newHCLog(logger))
	if err != nil {
		return fmt.Errorf("restore: open the snapshot store: %w", err)
	}
	_, trans := raft.NewInmemTransport("")
	defer trans.Close()
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(cfg.NodeID), Address: raft.ServerAddress(cfg.RaftAddr)}}}
	sink, err := fss.Create(raft.SnapshotVersionMax, info.RaftIndex, info.RaftTerm, conf, info.RaftIndex, trans)
	if err != nil {
		return fmt.Errorf("restore: create the snapshot: %w", err)
	}
	if err := json.NewEncoder(sink).Encode(&sm); err != nil {
		sink.Cancel()
		return fmt.Errorf("restore: write the snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("restore: close the snapshot: %w", err)
	}
	return nil
}

// requireEmpty refuses a dir that holds anything; an absent one is fine.
func requireEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("restore: %s is not empty", dir)
	}
	return nil
}

// checkDialable refuses a Raft address other nodes could not dial: no
// port, port 0, or an unspecified host.
func checkDialable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("restore: raft address %q: %w", addr, err)
	}
	if port == "0" || host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		return fmt.Errorf("restore: raft address %q is not one other nodes can dial (it goes into the Raft configuration): give the advertised address", addr)
	}
	return nil
}
