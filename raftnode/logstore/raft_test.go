package logstore

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Integration with a real hashicorp/raft node: snapshots truncate the log
// and a restart replays what follows the snapshot.

// logStoreTestFSM counts applied commands; each command carries its 1-based
// sequence number, so out-of-order or repeated applies are detected.
type logStoreTestFSM struct {
	mu    sync.Mutex
	count uint64
	bad   error
}

func (f *logStoreTestFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(l.Data) != 8 {
		f.bad = fmt.Errorf("entry %d: %d bytes", l.Index, len(l.Data))
		return nil
	}
	if seq := binary.BigEndian.Uint64(l.Data); seq != f.count+1 && f.bad == nil {
		f.bad = fmt.Errorf("entry %d: seq %d after %d", l.Index, seq, f.count)
	}
	f.count++
	return nil
}

func (f *logStoreTestFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return logStoreTestSnapshot(f.count), nil
}

func (f *logStoreTestFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.mu.Lock()
	f.count = binary.BigEndian.Uint64(b[:])
	f.mu.Unlock()
	return nil
}

func (f *logStoreTestFSM) state() (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count, f.bad
}

type logStoreTestSnapshot uint64

func (s logStoreTestSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(binary.BigEndian.AppendUint64(nil, uint64(s))); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (logStoreTestSnapshot) Release() {}

type logStoreTestNode struct {
	raft  *raft.Raft
	store *Store
	trans *raft.NetworkTransport
	fsm   *logStoreTestFSM
}

func startLogStoreTestNode(t *testing.T, logDir, snapDir string) *logStoreTestNode {
	t.Helper()
	store, err := Open(Config{Dir: logDir})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(snapDir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = "n1"
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = 1 << 30 // only the explicit Snapshot below
	conf.SnapshotInterval = time.Hour
	conf.TrailingLogs = 10
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Error})
	fsm := &logStoreTestFSM{}

	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		t.Fatal(err)
	}
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	n := &logStoreTestNode{raft: r, store: store, trans: trans, fsm: fsm}
	t.Cleanup(n.stop)
	if !existing {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: trans.LocalAddr()}}}
		if err := r.BootstrapCluster(cfg).Error(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() bool { return r.State() == raft.Leader })
	return n
}

func (n *logStoreTestNode) stop() {
	if n.raft == nil {
		return
	}
	_ = n.raft.Shutdown().Error()
	_ = n.trans.Close()
	_ = n.store.Close()
	n.raft = nil
}

func (n *logStoreTestNode) apply(t *testing.T, from, to uint64) {
	t.Helper()
	futures := make([]raft.ApplyFuture, 0, to-from+1)
	for seq := from; seq <= to; seq++ {
		futures = append(futures, n.raft.Apply(binary.BigEndian.AppendUint64(nil, seq), 10*time.Second))
	}
	for _, f := range futures {
		if err := f.Error(); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
}

func TestLogStoreRaftIntegration(t *testing.T) {
	logDir, snapDir := t.TempDir(), t.TempDir()
	n := startLogStoreTestNode(t, logDir, snapDir)

	n.apply(t, 1, 1000)
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	// takeSnapshot truncates the log before the future returns.
	first, _ := n.store.FirstIndex()
	last, _ := n.store.LastIndex()
	if first <= 1 || last < 1000 || last-first+1 != 10 {
		t.Fatalf("after snapshot with TrailingLogs=10: FirstIndex %d, LastIndex %d", first, last)
	}
	// Entries after the snapshot must be replayed from the log on restart.
	n.apply(t, 1001, 1100)
	count, bad := n.fsm.state()
	if count != 1100 || bad != nil {
		t.Fatalf("FSM before restart: count %d, %v", count, bad)
	}
	lastBefore, _ := n.store.LastIndex()
	n.stop()

	n = startLogStoreTestNode(t, logDir, snapDir)
	gotFirst, _ := n.store.FirstIndex()
	if gotFirst != first {
		t.Fatalf("FirstIndex after restart = %d, want %d", gotFirst, first)
	}
	// The restored snapshot gives 1000, the log replays 1001..1100.
	waitFor(t, 10*time.Second, func() bool { c, _ := n.fsm.state(); return c >= 1100 })
	if count, bad := n.fsm.state(); count != 1100 || bad != nil {
		t.Fatalf("FSM after restart: count %d, %v", count, bad)
	}
	if last, _ := n.store.LastIndex(); last <= lastBefore {
		t.Fatalf("LastIndex after restart = %d, want > %d (new leader's no-op)", last, lastBefore)
	}
	// The node keeps working.
	n.apply(t, 1101, 1110)
	if count, bad := n.fsm.state(); count != 1110 || bad != nil {
		t.Fatalf("FSM after restart and more applies: count %d, %v", count, bad)
	}
}
