package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// runTheeye runs the binary with args and returns its output (stdout and
// stderr) and exit status.
func runTheeye(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, theeyeBin, args...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("theeye %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// cutLink cuts the Raft traffic between nodes i and j, both ways, and
// leaves their links to the other nodes up.
func (c *testCluster) cutLink(i, j int) {
	for _, pair := range [][2]int{{i, j}, {j, i}} {
		px, src := c.proxies[pair[0]], c.ips[pair[1]]
		px.mu.Lock()
		px.blocked[src] = true
		px.mu.Unlock()
		px.cut(func(s string) bool { return s == src })
	}
}

// TestRecoverFromLostQuorum: a 3-node cluster loses its leader and a
// follower for good, mid-load. The link between those two was cut first,
// so every entry the leader committed went through the survivor: every
// acknowledged event is in the survivor's Raft log store, some maybe not
// yet applied. The survivor cannot elect itself; `theeye recover` makes it
// the only voter; restarted with its usual flags it elects itself, holds
// every acknowledged event exactly once under the seq its 202 gave, takes
// the writes that waited, and a new node joins it and ends with the same.
func TestRecoverFromLostQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, true)
	key := c.nodes[0].createApp("web")
	lead := c.leader()
	li := slices.Index(c.nodes, lead)
	si, oi := (li+1)%3, (li+2)%3
	survivor, other := c.nodes[si], c.nodes[oi]
	c.cutLink(li, oi)
	l := c.startLoad(key, 4, 20)
	l.waitAcks(30)
	lead.kill9()
	other.kill9()
	l.mu.Lock()
	ackedBefore := len(l.acked)
	l.mu.Unlock()

	waitFor(t, 30*time.Second, "the survivor to see no leader", func() error {
		st, b, _ := do(t, "GET", survivor.URL+"/readyz", "", "", nil)
		if st != 503 || !strings.Contains(string(b), "no leader") {
			return fmt.Errorf("/readyz %d %s", st, b)
		}
		return nil
	})
	if st, b, _ := do(t, "POST", survivor.URL+"/v1/events", key, "application/json", []byte(exPageview)); st != 503 {
		t.Fatalf("a write to the survivor without a quorum: %d %s, want 503", st, b)
	}
	survivor.kill9()

	out, code := runTheeye(t, "recover", "--data-dir", survivor.DataDir)
	t.Logf("theeye recover:\n%s", out)
	sid, lid, oid := fmt.Sprintf("n%d", si+1), fmt.Sprintf("n%d", li+1), fmt.Sprintf("n%d", oi+1)
	for _, want := range []string{"node " + sid + " is now the only voter", "last raft entry:  index ", "last seq ", "--join " + survivor.URL} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("theeye recover: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	removed := regexp.MustCompile(`(?m)^  removed: +(.*)$`).FindStringSubmatch(out)
	if removed == nil || !strings.Contains(removed[1], lid+" ") || !strings.Contains(removed[1], oid+" ") || strings.Contains(removed[1], sid+" ") {
		t.Fatalf("theeye recover does not say it removed %s and %s:\n%s", lid, oid, out)
	}

	survivor.restart() // its usual flags, --join of a dead node included
	l.waitAcks(10)     // the writes that waited, and new ones
	l.finish()
	joiner := newProc(t, t.TempDir(), "--node-id", "n4", "--cluster-key", testClusterKey, "--join", survivor.URL)
	t.Cleanup(joiner.kill9)
	joiner.start()
	c.nodes = []*proc{survivor, joiner}
	c.waitMembers(2)
	c.verify(l)
	found := checkAckedSeqs(t, survivor, l)
	v, err := c.view(survivor)
	if err != nil || len(v.Nodes) != 2 || v.Leader != sid || !slices.ContainsFunc(v.Nodes, func(n struct {
		ID         string  `json:"id"`
		State      string  `json:"state"`
		AppliedSeq *uint64 `json:"applied_seq"`
		IndexedSeq *uint64 `json:"indexed_seq"`
	}) bool {
		return n.ID == "n4"
	}) {
		t.Fatalf("GET /v1/cluster after the join: %+v, %v; want %s leading, and n4", v, err, sid)
	}
	t.Logf("%d events acknowledged (%d before the two nodes were lost), %d found on the survivor and on the new node", len(l.acked), ackedBefore, found)
}

// checkAckedSeqs checks that p holds every acknowledged event under the
// seq its 202 gave, or, for a batch sent more than once, under an earlier
// one (the first copy stored is kept), and returns how many events it
// holds.
func checkAckedSeqs(t *testing.T, p *proc, l *load) int {
	t.Helper()
	evs := p.exportAll(fmt.Sprintf("/v1/events?min_seq=%d&wait=60s", l.maxSeq))
	seqOf := map[string]uint64{}
	for _, e := range evs {
		seqOf[e.ID] = e.Seq
	}
	for id, want := range l.seqOf {
		got, ok := seqOf[id]
		switch {
		case !ok:
			t.Fatalf("acknowledged event %s (seq %d) is missing", id, want)
		case got != want && !l.retried[id]:
			t.Fatalf("event %s is at seq %d, its 202 said %d", id, got, want)
		case got > want:
			t.Fatalf("event %s is at seq %d, after the seq %d of its acknowledged copy", id, got, want)
		}
	}
	return len(evs)
}

// TestRecoverRefuses: theeye recover refuses, with a message that says
// why and a status that is not 0, a dir that holds no cluster, a dir a
// running node holds, and an id the dir does not know; --dry-run changes
// nothing.
func TestRecoverRefuses(t *testing.T) {
	missing := t.TempDir() + "/nowhere"
	for dir, want := range map[string]string{t.TempDir(): "holds no cluster", missing: "does not exist"} {
		out, code := runTheeye(t, "recover", "--data-dir", dir)
		if code == 0 || !strings.Contains(out, "recover refused: ") || !strings.Contains(out, want) {
			t.Fatalf("recover on %s: exit %d, want a refusal saying %q:\n%s", dir, code, want, out)
		}
	}
	p := startNode(t, t.TempDir())
	out, code := runTheeye(t, "recover", "--data-dir", p.DataDir)
	if code == 0 || !strings.Contains(out, "in use") || !strings.Contains(out, "stop it first") {
		t.Fatalf("recover on the dir of a running node: exit %d:\n%s", code, out)
	}
	if st, _, _ := do(t, "GET", p.URL+"/readyz", "", "", nil); st != 200 {
		t.Fatalf("the node is not ready after a refused recover: %d", st)
	}
	p.stop()
	out, code = runTheeye(t, "recover", "--data-dir", p.DataDir, "--node-id", "n9")
	if code == 0 || !strings.Contains(out, `node "n9" is not a member`) {
		t.Fatalf("recover with an id the dir does not know: exit %d:\n%s", code, out)
	}
	out, code = runTheeye(t, "recover", "--data-dir", p.DataDir, "--dry-run")
	if code != 0 || !strings.Contains(out, "Dry run, nothing changed") || !strings.Contains(out, "node id:          n1 (recorded in the data dir)") {
		t.Fatalf("recover --dry-run: exit %d:\n%s", code, out)
	}
	p.restart()
}
