package raftnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/cmd/theeye/theeyetest"
	"github.com/theeye/theeye/log"
)

// TestRestoreAfterRetentionCut: the restored log starts at the source's
// first seq, with the same seqs and bytes.
func TestRestoreAfterRetentionCut(t *testing.T) {
	l := testLog(t, 101, 4)
	file := backupOf(t, l, testState(12), 30, 2)
	dir := t.TempDir()
	rep, err := Restore(RestoreConfig{From: bytes.NewReader(file), Dir: filepath.Join(dir, "raft"), LogDir: filepath.Join(dir, "log"),
		NodeID: "r1", RaftAddr: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FirstSeq != 101 || rep.LastSeq != 108 || rep.Events() != 8 {
		t.Fatalf("report %+v", rep.BackupHeader)
	}
	got, err := log.Open(filepath.Join(dir, "log"), log.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.FirstSeq() != 101 || got.LastSeq() != 108 || got.LastRaftIndex() != l.LastRaftIndex() {
		t.Fatalf("restored log: seqs %d-%d, raft index %d", got.FirstSeq(), got.LastSeq(), got.LastRaftIndex())
	}
	var want, have []string
	for _, lg := range []*log.Log{l, got} {
		out := &want
		if lg == got {
			out = &have
		}
		if _, err := lg.ReadFrom(101, 100, func(seq uint64, env *theeye.Envelope) error {
			*out = append(*out, fmt.Sprintf("%d %s %s", seq, env.App, env.Raw))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(want, have) || len(have) != 8 {
		t.Fatalf("restored events %q, want %q", have, want)
	}
}

// TestRestoreRefuses: a dir that is not empty, an address no node can
// dial, and a damaged file.
func TestRestoreRefuses(t *testing.T) {
	file := backupOf(t, testLog(t, 1, 2), testState(12), 20, 4)
	full := t.TempDir()
	if _, err := log.Open(filepath.Join(full, "log"), log.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	cfg := func(dir, addr string, b []byte) RestoreConfig {
		return RestoreConfig{From: bytes.NewReader(b), Dir: filepath.Join(dir, "raft"), LogDir: filepath.Join(dir, "log"), NodeID: "r1", RaftAddr: addr}
	}
	if _, err := Restore(cfg(full, "127.0.0.1:9", file)); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a dir that holds a log: %v", err)
	}
	for _, addr := range []string{"0.0.0.0:8081", "127.0.0.1:0", "nowhere"} {
		if _, err := Restore(cfg(t.TempDir(), addr, file)); err == nil || !strings.Contains(err.Error(), "raft address") {
			t.Fatalf("restore with raft address %q: %v", addr, err)
		}
	}
	bad := bytes.Clone(file)
	bad[len(bad)-100] ^= 1
	if _, err := Restore(cfg(t.TempDir(), "127.0.0.1:9", bad)); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("restore of a damaged file: %v", err)
	}
}

// TestRestoredNodeTakesWrites: a backup taken from a follower of a live
// cluster while it takes writes holds exactly what the follower had
// applied at the backup's Raft index; restored and opened, the node elects
// itself in a later term, holds the same events under the same seqs and
// the same state, appends after the backup's last seq, and a new node
// joining it catches up through a snapshot that streams its log/.
func TestRestoredNodeTakesWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	nodes := newCluster(t)
	lead := leaderOf(t, nodes)
	ctx := context.Background()
	key := theeye.Key{ID: "k1", Name: "web", App: "web", Scopes: []theeye.Scope{theeye.ScopeIngest}, Hash: theeye.HashSecret("s3cret")}
	if err := lead.CreateApp(ctx, theeye.App{ID: "web", Name: "web"}, key); err != nil {
		t.Fatal(err)
	}
	if _, err := lead.PutSchema(ctx, theeye.Schema{Category: "c", Name: "n", Schema: json.RawMessage(`{"type":"object"}`)}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := lead.Append(ctx, envs(fmt.Sprintf("b%d", i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	follower := nodes[slices.IndexFunc(nodes, func(n *testNode) bool { return n != lead })]
	poll(t, 10*time.Second, "the follower to apply everything", func() error {
		if follower.log.LastSeq() < 50 {
			return fmt.Errorf("at seq %d", follower.log.LastSeq())
		}
		return nil
	})
	b, err := follower.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lead.Append(ctx, envs("after", 5)); err != nil { // after the snapshot: not in the backup
		t.Fatal(err)
	}
	var file bytes.Buffer
	if _, err := b.WriteTo(&file); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if b.Header.LastSeq != 50 {
		t.Fatalf("the backup ends at seq %d, want 50", b.Header.LastSeq)
	}
	want := readAll(t, lead.log)[:50]

	dir := t.TempDir()
	port, err := theeyetest.ClosedPort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	rep, err := Restore(RestoreConfig{From: bytes.NewReader(file.Bytes()), Dir: filepath.Join(dir, "raft"), LogDir: filepath.Join(dir, "log"), NodeID: "r1", RaftAddr: addr})
	if err != nil {
		t.Fatal(err)
	}
	r := openTestNode(t, "r1", dir, addr, false)
	waitLeader(t, r.Node)
	checkRestored(t, r, rep, lead, want)

	j := openTestNode(t, "r2", t.TempDir(), "", false)
	if err := r.AddVoter(ctx, NodeInfo{ID: "r2", RaftAddr: j.RaftAddr(), HTTPAddr: "http://r2"}); err != nil {
		t.Fatal(err)
	}
	poll(t, 20*time.Second, "the new node to catch up", func() error {
		if j.log.LastSeq() < r.log.LastSeq() {
			return fmt.Errorf("at seq %d of %d", j.log.LastSeq(), r.log.LastSeq())
		}
		return nil
	})
	if !slices.Equal(readAll(t, j.log), readAll(t, r.log)) {
		t.Fatal("the node that joined the restored one holds other events")
	}
}

// checkRestored checks a restored node against the backup's source.
func checkRestored(t *testing.T, r *testNode, rep RestoreReport, src *testNode, want []string) {
	t.Helper()
	if got := readAll(t, r.log); !slices.Equal(got, want) {
		t.Fatalf("restored events differ: %d events, want %d", len(got), len(want))
	}
	if term, _ := strconv.ParseUint(r.raft.Stats()["term"], 10, 64); term <= rep.RaftTerm {
		t.Fatalf("the restored node leads in term %d, the backup's is %d", term, rep.RaftTerm)
	}
	seq, err := r.Append(context.Background(), envs("new", 3))
	if err != nil || seq != rep.LastSeq+3 {
		t.Fatalf("a write to the restored node: seq %d, %v; want %d", seq, err, rep.LastSeq+3)
	}
	if r.raft.LastIndex() <= rep.RaftIndex || r.log.LastRaftIndex() <= rep.RaftIndex {
		t.Fatalf("raft at index %d, log/ at %d: not above the backup's %d", r.raft.LastIndex(), r.log.LastRaftIndex(), rep.RaftIndex)
	}
	if !slices.Equal(r.Apps(), src.Apps()) || !slices.EqualFunc(r.Keys(), src.Keys(), func(a, b theeye.Key) bool { return a.ID == b.ID && a.Hash == b.Hash }) {
		t.Fatalf("apps %v keys %v, want %v %v", r.Apps(), r.Keys(), src.Apps(), src.Keys())
	}
	if got, want := r.SchemaVersions("c", "n"), src.SchemaVersions("c", "n"); len(got) != 1 || got[0].Index != want[0].Index {
		t.Fatalf("schemas %+v, want %+v", got, want)
	}
	poll(t, 10*time.Second, "the restored node to record itself", func() error {
		if nodes := r.Nodes(); len(nodes) != 1 || nodes["r1"].RaftAddr != r.RaftAddr() {
			return fmt.Errorf("nodes %v", nodes)
		}
		return nil
	})
}
