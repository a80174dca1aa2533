package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/cmd/theeye/theeyetest"
	"github.com/theeye/theeye/log"
)

// poll is theeyetest.Poll for a test: it fails the test when fn does not
// return nil within timeout. (It is the waitFor of the other packages;
// logstore_test.go has a waitFor of its own.)
func poll(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	if err := theeyetest.Poll(timeout, fn); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

type testNode struct {
	*Node
	dir  string
	log  *log.Log
	addr string
}

func fastRaft() *raft.Config {
	c := DefaultRaftConfig()
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 200 * time.Millisecond
	c.SnapshotInterval = time.Hour // snapshots only when a test asks
	c.SnapshotThreshold = 1 << 30
	return c
}

// openTestNode opens (or reopens) a node in dir; bootstrap applies to a new dir.
func openTestNode(t *testing.T, id, dir, raftAddr string, bootstrap bool) *testNode {
	t.Helper()
	return openTestNodeWith(t, id, dir, raftAddr, bootstrap, nil)
}

func openTestNodeWith(t *testing.T, id, dir, raftAddr string, bootstrap bool, rc *raft.Config) *testNode {
	t.Helper()
	if rc == nil {
		rc = fastRaft()
	}
	l, err := log.Open(filepath.Join(dir, "log"), log.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if raftAddr == "" {
		raftAddr = "127.0.0.1:0"
	}
	n, err := Open(Config{
		NodeID: id, Dir: filepath.Join(dir, "raft"), RaftAddr: raftAddr, HTTPAddr: "http://" + id,
		Bootstrap: bootstrap, Log: l, Codec: log.CodecZstd, Raft: rc, ClusterKey: "test-cluster-key",
		Fatal: func(err error) { t.Errorf("fatal: %v", err) },
	})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	tn := &testNode{Node: n, dir: dir, log: l, addr: n.RaftAddr()}
	t.Cleanup(func() { tn.close(t) })
	return tn
}

func (tn *testNode) close(t *testing.T) {
	if tn.Node == nil {
		return
	}
	if err := tn.Node.Close(); err != nil {
		t.Errorf("close node: %v", err)
	}
	if err := tn.log.Close(); err != nil {
		t.Errorf("close log: %v", err)
	}
	tn.Node = nil
}

func waitLeader(t *testing.T, n *Node) {
	t.Helper()
	poll(t, 10*time.Second, "leadership", func() error {
		if !n.IsLeader() {
			return errors.New("not leader yet")
		}
		return nil
	})
}

func envs(prefix string, k int) []theeye.Envelope {
	out := make([]theeye.Envelope, k)
	for i := range out {
		out[i] = theeye.Envelope{ReceivedAt: int64(1e18 + i), App: "app", Raw: []byte(fmt.Sprintf(`{"k":"%s-%d"}`, prefix, i))}
		out[i].ID[0] = byte(i)
	}
	return out
}

func readAll(t *testing.T, l *log.Log) []string {
	t.Helper()
	var out []string
	_, err := l.ReadFrom(1, 1<<30, func(seq uint64, env *theeye.Envelope) error {
		if seq != uint64(len(out)+1) {
			return fmt.Errorf("seq %d after %d", seq, len(out))
		}
		out = append(out, string(env.Raw))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAppendAcksAfterApply: Append returns the seq of the request's last
// event only once the entry is in the Raft log and applied to log/.
func TestAppendAcksAfterApply(t *testing.T) {
	n := openTestNode(t, "n1", t.TempDir(), "", true)
	waitLeader(t, n.Node)
	seq, err := n.Append(context.Background(), envs("a", 3))
	if err != nil {
		t.Fatal(err)
	}
	if seq != 3 || n.log.LastSeq() < 3 || n.AppliedSeq() < 3 {
		t.Fatalf("seq %d, log last %d, applied %d", seq, n.log.LastSeq(), n.AppliedSeq())
	}
	last, err := n.logStore.LastIndex()
	if err != nil || last < n.log.LastRaftIndex() {
		t.Fatalf("raft log last index %d (%v) behind log/ frame index %d", last, err, n.log.LastRaftIndex())
	}
	got := readAll(t, n.log)
	if len(got) != 3 || got[2] != `{"k":"a-2"}` {
		t.Fatalf("log holds %q", got)
	}
}

// TestGroupCommitCoalescesConcurrentAppends: concurrent single-event
// requests share entries, and every request gets its own, dense seq.
func TestGroupCommitCoalescesConcurrentAppends(t *testing.T) {
	n := openTestNode(t, "n1", t.TempDir(), "", true)
	waitLeader(t, n.Node)
	before, _ := n.logStore.LastIndex()
	const clients, each = 64, 20
	seqs := make(chan uint64, clients*each)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				seq, err := n.Append(context.Background(), envs(fmt.Sprintf("c%d-%d", c, i), 1))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- seq
			}
		}(c)
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d acknowledged twice", s)
		}
		seen[s] = true
	}
	for s := uint64(1); s <= clients*each; s++ {
		if !seen[s] {
			t.Fatalf("seq %d never acknowledged", s)
		}
	}
	after, _ := n.logStore.LastIndex()
	if entries := after - before; entries >= clients*each {
		t.Fatalf("%d entries for %d requests: nothing was coalesced", entries, clients*each)
	} else {
		t.Logf("%d requests in %d entries", clients*each, entries)
	}
}

// TestRestartSkipsAppliedEntries (invariant 4): Raft replays its log on
// restart; the FSM recognises what log/ already holds and appends nothing
// twice, with and without a snapshot in between.
func TestRestartSkipsAppliedEntries(t *testing.T) {
	dir := t.TempDir()
	n := openTestNode(t, "n1", dir, "", true)
	waitLeader(t, n.Node)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := n.Append(ctx, envs(fmt.Sprintf("a%d", i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := n.Append(ctx, envs(fmt.Sprintf("b%d", i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	want := readAll(t, n.log)
	addr := n.addr
	n.close(t)

	n = openTestNode(t, "n1", dir, addr, true)
	waitLeader(t, n.Node)
	// Wait until Raft has replayed everything it holds.
	poll(t, 10*time.Second, "replay", func() error {
		if n.raft.AppliedIndex() < n.raft.LastIndex() {
			return fmt.Errorf("applied %d of %d", n.raft.AppliedIndex(), n.raft.LastIndex())
		}
		return nil
	})
	if got := readAll(t, n.log); len(got) != len(want) {
		t.Fatalf("after restart the log holds %d events, want %d", len(got), len(want))
	}
	seq, err := n.Append(ctx, envs("c", 1))
	if err != nil || seq != uint64(len(want)+1) {
		t.Fatalf("next seq %d (%v), want %d", seq, err, len(want)+1)
	}
}

// newCluster starts three in-process nodes over loopback TCP, n1
// bootstrapping with all three as voters.
func newCluster(t *testing.T) []*testNode {
	t.Helper()
	var nodes []*testNode
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, openTestNode(t, fmt.Sprintf("n%d", i), t.TempDir(), "", false))
	}
	var servers []raft.Server
	for _, n := range nodes {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(n.ID()), Address: raft.ServerAddress(n.addr)})
	}
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	return nodes
}

func leaderOf(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var l *testNode
	poll(t, 15*time.Second, "a leader", func() error {
		for _, n := range nodes {
			if n.Node != nil && n.IsLeader() {
				l = n
				return nil
			}
		}
		return errors.New("no leader")
	})
	return l
}

// TestNoAckWithoutQuorum (invariant 1): with both followers gone, the
// leader never acknowledges a write.
func TestNoAckWithoutQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	nodes := newCluster(t)
	l := leaderOf(t, nodes)
	ctx := context.Background()
	seq, err := l.Append(ctx, envs("q", 5))
	if err != nil || seq != 5 {
		t.Fatalf("append with quorum: %d %v", seq, err)
	}
	// Every node applies the same events under the same seqs.
	for _, n := range nodes {
		poll(t, 10*time.Second, "replication", func() error {
			if n.log.LastSeq() < 5 {
				return fmt.Errorf("%s at %d", n.ID(), n.log.LastSeq())
			}
			return nil
		})
	}
	want := readAll(t, l.log)
	for _, n := range nodes {
		if got := readAll(t, n.log); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s holds %q, leader %q", n.ID(), got, want)
		}
	}
	for _, n := range nodes {
		if n != l {
			n.close(t)
		}
	}
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if seq, err := l.Append(actx, envs("lost", 1)); err == nil {
		t.Fatalf("acknowledged seq %d without a quorum", seq)
	}
}

// TestConfigReplicates: an app created on the leader is known to every
// node's key lookup; a duplicate is refused the same way everywhere.
func TestConfigReplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	nodes := newCluster(t)
	l := leaderOf(t, nodes)
	ctx := context.Background()
	app := theeye.App{ID: "web", Name: "web"}
	key := theeye.Key{ID: "k1", Name: "web", App: "web", Scopes: []theeye.Scope{theeye.ScopeIngest}, Hash: theeye.HashSecret("s3cret")}
	if err := l.applyCommand(ctx, &command{Op: opCreateApp, App: &app, Key: &key}); err != nil {
		t.Fatal(err)
	}
	err := l.applyCommand(ctx, &command{Op: opCreateApp, App: &app, Key: &key})
	if theeye.ErrorCode(err) != theeye.EConflict {
		t.Fatalf("duplicate app: %v, want a conflict", err)
	}
	for _, n := range nodes {
		poll(t, 10*time.Second, "config on "+n.ID(), func() error {
			if k, ok := n.LookupKey(theeye.HashSecret("s3cret")); !ok || k.App != "web" {
				return errors.New("key not known yet")
			}
			return nil
		})
	}
	for _, n := range nodes {
		if n != l {
			if err := n.applyCommand(ctx, &command{Op: opRevokeKey, KeyID: "k1"}); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("config on a follower: %v, want ErrNotLeader", err)
			}
		}
	}
}

// TestFollowerCatchesUpFromSnapshot: a follower that was down while the
// leader snapshotted and truncated its Raft log past the follower's
// position catches up through a snapshot that streams log/ frames, then
// from the log, and ends with the same seq -> event mapping.
func TestFollowerCatchesUpFromSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	rc := fastRaft()
	rc.TrailingLogs = 5
	var nodes []*testNode
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, openTestNodeWith(t, fmt.Sprintf("n%d", i), t.TempDir(), "", false, rc))
	}
	var servers []raft.Server
	for _, n := range nodes {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(n.ID()), Address: raft.ServerAddress(n.addr)})
	}
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	l := leaderOf(t, nodes)
	ctx := context.Background()
	if _, err := l.Append(ctx, envs("before", 10)); err != nil {
		t.Fatal(err)
	}
	var lagger *testNode
	for _, n := range nodes {
		if n != l {
			lagger = n
			break
		}
	}
	poll(t, 10*time.Second, "the follower to have the first entry", func() error {
		if lagger.log.LastSeq() < 10 {
			return fmt.Errorf("at %d", lagger.log.LastSeq())
		}
		return nil
	})
	id, dir, addr := lagger.ID(), lagger.dir, lagger.addr
	lagger.close(t)
	for i := 0; i < 50; i++ {
		if _, err := l.Append(ctx, envs(fmt.Sprintf("during%d", i), 7)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	first, _ := l.logStore.FirstIndex()
	if first <= 3 {
		t.Fatalf("the leader kept its raft log from index %d: nothing forces a snapshot", first)
	}
	want := readAll(t, l.log)
	back := openTestNodeWith(t, id, dir, addr, false, rc)
	// Once it no longer says it is catching up (what /readyz waits for),
	// it holds everything committed before it started: no poll on the
	// log itself.
	poll(t, 20*time.Second, "catch-up", back.CatchingUp)
	if back.log.LastSeq() < uint64(len(want)) {
		t.Fatalf("caught up at seq %d, but %d were committed before it started", back.log.LastSeq(), len(want))
	}
	if got := readAll(t, back.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatal("the caught-up follower holds other events than the leader")
	}
	// It then follows from the log again.
	seq, err := l.Append(ctx, envs("after", 1))
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "replication after catch-up", func() error {
		if back.log.LastSeq() < seq {
			return fmt.Errorf("at %d of %d", back.log.LastSeq(), seq)
		}
		return nil
	})

	// A crash while it installed the snapshot, before log/ was synced, is
	// played by losing its log/: the snapshot it stored holds the frames,
	// and its next start appends them again instead of going on with a gap.
	id, dir, addr = back.ID(), back.dir, back.addr
	back.close(t)
	if err := os.RemoveAll(filepath.Join(dir, "log")); err != nil {
		t.Fatal(err)
	}
	again := openTestNodeWith(t, id, dir, addr, false, rc)
	if got := readAll(t, again.log); len(got) < len(want) || fmt.Sprint(got[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("after losing log/ below the snapshot: %d events, want the %d of the snapshot first", len(got), len(want))
	}
}

// TestStreamLayerRequiresClusterKey: a peer without the cluster key gets
// no Raft connection; one with it does.
func TestStreamLayerRequiresClusterKey(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	srv, err := newStreamLayer("127.0.0.1:0", "", []byte("right"), nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for _, key := range []string{"wrong", "right-ish"} {
		cl, _ := newStreamLayer("127.0.0.1:0", "", []byte(key), nil, logger)
		if c, err := cl.Dial(raft.ServerAddress(srv.Addr().String()), time.Second); err == nil {
			c.Close()
			t.Errorf("dial with key %q succeeded", key)
		}
		cl.Close()
	}
	good, _ := newStreamLayer("127.0.0.1:0", "", []byte("right"), nil, logger)
	defer good.Close()
	c, err := good.Dial(raft.ServerAddress(srv.Addr().String()), time.Second)
	if err != nil {
		t.Fatalf("dial with the right key: %v", err)
	}
	defer c.Close()
	select {
	case sc := <-accepted:
		sc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the right key was not accepted")
	}
	if len(accepted) != 0 {
		t.Fatal("a connection with a wrong key was handed to raft")
	}
}
