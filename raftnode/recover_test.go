package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/theeye/theeye"
)

func recoverConfig(dir string) RecoverConfig {
	return RecoverConfig{Dir: filepath.Join(dir, "raft"), LogDir: filepath.Join(dir, "log")}
}

// TestRecoverMakesTheSurvivorTheOnlyVoter: a follower that outlives both
// other members of its cluster cannot elect itself; Recover, run on its
// dir, makes it the only voter with every entry it held, even those it
// held in its Raft log store only (here: its log/ is gone, so the replay
// appends every event again, under the same seqs). Started again, it
// elects itself and goes on from the next seq.
func TestRecoverMakesTheSurvivorTheOnlyVoter(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	nodes := newCluster(t)
	l := leaderOf(t, nodes)
	ctx := context.Background()
	key := theeye.Key{ID: "k1", Name: "web", App: "web", Scopes: []theeye.Scope{theeye.ScopeIngest}, Hash: theeye.HashSecret("s3cret")}
	if err := l.CreateApp(ctx, theeye.App{ID: "web", Name: "web"}, key); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := l.Append(ctx, envs(fmt.Sprintf("r%d", i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	var s *testNode
	for _, n := range nodes {
		if n != l {
			s = n
			break
		}
	}
	poll(t, 10*time.Second, "the survivor to apply everything", func() error {
		if _, ok := s.LookupKey(key.Hash); !ok || s.log.LastSeq() < 50 {
			return fmt.Errorf("at seq %d", s.log.LastSeq())
		}
		return nil
	})
	want, lid := readAll(t, l.log), l.ID()
	for _, n := range nodes {
		if n != s {
			n.close(t)
		}
	}
	if _, err := Recover(recoverConfig(s.dir)); !errors.Is(err, ErrInUse) {
		t.Fatalf("Recover on the dir of a running node: %v, want ErrInUse", err)
	}
	id, dir, addr := s.ID(), s.dir, s.addr
	s.close(t)

	dry, err := Recover(RecoverConfig{Dir: filepath.Join(dir, "raft"), LogDir: filepath.Join(dir, "log"), DryRun: true})
	if err != nil || dry.NodeID != id || dry.NodeIDFrom != "recorded" || len(dry.Members) != 3 || len(dry.Removed) != 2 || dry.LastSeq != 50 {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "log")); err != nil {
		t.Fatal(err)
	}
	rep, err := Recover(recoverConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	if rep.NodeID != id || rep.RaftAddr != addr || len(rep.Removed) != 2 || slices.ContainsFunc(rep.Removed, func(m ServerInfo) bool { return m.ID == id }) {
		t.Fatalf("report %+v", rep)
	}
	if rep.LastSeq != 50 || rep.Replayed != 50 || rep.LastIndex < dry.LastIndex || rep.LastTerm == 0 {
		t.Fatalf("report %+v, dry run %+v: want last seq 50, 50 events replayed", rep, dry)
	}
	if !slices.Equal(rep.Forgotten, []string{lid}) { // only the leader recorded its address
		t.Fatalf("forgotten %v, want [%s]", rep.Forgotten, lid)
	}
	again, err := Recover(recoverConfig(dir))
	if err != nil || len(again.Members) != 1 || len(again.Removed) != 0 || again.Replayed != 0 || again.LastSeq != 50 {
		t.Fatalf("a second Recover: %+v, %v", again, err)
	}

	back := openTestNode(t, id, dir, addr, false)
	waitLeader(t, back.Node)
	if got := readAll(t, back.log); !slices.Equal(got, want) {
		t.Fatalf("the recovered node holds %d events, the old leader %d (or others)", len(got), len(want))
	}
	if _, ok := back.LookupKey(key.Hash); !ok {
		t.Fatal("the recovered node lost the app's key")
	}
	if st, err := back.Stats(); err != nil || len(st.Servers) != 1 || st.Servers[0].ID != id {
		t.Fatalf("configuration after recovery: %+v, %v", st, err)
	}
	if _, ok := back.Nodes()[lid]; ok {
		t.Fatalf("the replicated state still has the address of removed node %s", lid)
	}
	if seq, err := back.Append(ctx, envs("after", 1)); err != nil || seq != 51 {
		t.Fatalf("append after recovery: seq %d, %v; want 51", seq, err)
	}
}

// TestRecoverRefusesADirWithoutACluster: an empty dir, a dir that does
// not exist, and a member id the dir does not know are refused.
func TestRecoverRefusesADirWithoutACluster(t *testing.T) {
	empty := t.TempDir()
	if _, err := Recover(recoverConfig(empty)); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("empty dir: %v, want ErrNoCluster", err)
	}
	if _, err := os.Stat(filepath.Join(empty, "raft")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Recover created %s/raft in a dir with no cluster", empty)
	}
	if _, err := Recover(recoverConfig(filepath.Join(empty, "nowhere"))); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("missing dir: %v, want ErrNoCluster", err)
	}
	dir := t.TempDir()
	n := openTestNode(t, "n1", dir, "", true)
	waitLeader(t, n.Node)
	n.close(t)
	cfg := recoverConfig(dir)
	cfg.NodeID = "n9"
	if _, err := Recover(cfg); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("unknown node id: %v, want ErrUnknownNode", err)
	}
}
