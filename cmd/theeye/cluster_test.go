package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

const testClusterKey = "test-cluster-key"

// raftProxy stands in front of one node's Raft port so a test can cut it
// off: every node advertises its proxy's address, and dials from its own
// loopback IP (127.0.0.1x), so a proxy can tell who is calling.
type raftProxy struct {
	ln net.Listener

	mu      sync.Mutex
	target  string          // the node's Raft listener, once it is known
	down    bool            // refuse every connection (the node behind is cut off)
	blocked map[string]bool // refuse connections from these source IPs
	conns   map[net.Conn]string
}

func newRaftProxy(t *testing.T, ip string) *raftProxy {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	p := &raftProxy{ln: ln, blocked: map[string]bool{}, conns: map[net.Conn]string{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut(func(string) bool { return true }) })
	return p
}

func (p *raftProxy) addr() string { return p.ln.Addr().String() }

func (p *raftProxy) setTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *raftProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		src, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		p.mu.Lock()
		refuse := p.down || p.blocked[src] || p.target == ""
		target := p.target
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = src, src
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *raftProxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cut closes the open connections whose source IP matches.
func (p *raftProxy) cut(match func(src string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, src := range p.conns {
		if match(src) {
			c.Close()
		}
	}
}

// testCluster is three (or more) real theeye processes on loopback.
type testCluster struct {
	t       *testing.T
	nodes   []*proc
	proxies []*raftProxy
	ips     []string
}

// startCluster starts n nodes: n1 bootstraps, the others --join it. With
// proxies, Raft traffic goes through a raftProxy per node.
func startCluster(t *testing.T, n int, proxies bool, extra ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	for i := 1; i <= n; i++ {
		ip := "127.0.0.1"
		if proxies {
			ip = fmt.Sprintf("127.0.0.%d", 10+i)
		}
		p := newProc(t, filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i)), append([]string{"--node-id", fmt.Sprintf("n%d", i), "--cluster-key", testClusterKey}, extra...)...)
		p.RaftHost = ip
		if proxies {
			px := newRaftProxy(t, fmt.Sprintf("127.0.0.%d", 20+i))
			p.OnListen = func(n *theeyetest.Node) { px.setTarget(fmt.Sprintf("%s:%d", ip, n.RaftPort)) }
			c.proxies = append(c.proxies, px)
			p.Extra = append(p.Extra, "--advertise-raft", px.addr())
		}
		if i > 1 {
			p.Extra = append(p.Extra, "--join", c.nodes[0].URL)
		}
		c.ips = append(c.ips, ip)
		c.nodes = append(c.nodes, p)
		t.Cleanup(p.kill9)
		p.start()
	}
	c.waitMembers(n)
	return c
}

type clusterView struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID         string  `json:"id"`
		State      string  `json:"state"`
		AppliedSeq *uint64 `json:"applied_seq"`
		IndexedSeq *uint64 `json:"indexed_seq"`
	} `json:"nodes"`
}

func (c *testCluster) view(p *proc) (clusterView, error) {
	var v clusterView
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return v, fmt.Errorf("GET /v1/cluster: %s", resp.Status)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// waitMembers waits until the first live node sees n voters, every one
// reachable, with a leader.
func (c *testCluster) waitMembers(n int) {
	c.t.Helper()
	waitFor(c.t, 60*time.Second, fmt.Sprintf("%d members", n), func() error {
		v, err := c.view(c.live()[0])
		if err != nil {
			return err
		}
		if v.Leader == "" || len(v.Nodes) != n {
			return fmt.Errorf("leader %q, %d nodes", v.Leader, len(v.Nodes))
		}
		for _, nd := range v.Nodes {
			if nd.State == "unreachable" {
				return fmt.Errorf("%s unreachable", nd.ID)
			}
		}
		return nil
	})
}

func (c *testCluster) live() []*proc {
	var out []*proc
	for _, p := range c.nodes {
		if p.alive() {
			out = append(out, p)
		}
	}
	return out
}

// leader returns the node every live node agrees leads.
func (c *testCluster) leader() *proc {
	c.t.Helper()
	var l *proc
	waitFor(c.t, 60*time.Second, "a leader", func() error {
		for _, p := range c.live() {
			v, err := c.view(p)
			if err != nil || v.Leader == "" {
				continue
			}
			for i, q := range c.nodes {
				if fmt.Sprintf("n%d", i+1) == v.Leader && q.alive() {
					l = q
					return nil
				}
			}
		}
		return fmt.Errorf("no live leader")
	})
	return l
}

// partition cuts node i's Raft traffic both ways.
func (c *testCluster) partition(i int) {
	for j, px := range c.proxies {
		px.mu.Lock()
		if j == i {
			px.down = true
		} else {
			px.blocked[c.ips[i]] = true
		}
		px.mu.Unlock()
		if j == i {
			px.cut(func(string) bool { return true })
		} else {
			px.cut(func(src string) bool { return src == c.ips[i] })
		}
	}
}

func (c *testCluster) heal() {
	for _, px := range c.proxies {
		px.mu.Lock()
		px.down = false
		clear(px.blocked)
		px.mu.Unlock()
	}
}

// load is a set of writers posting batches with unique ids to random
// nodes, retrying a refused batch with the same ids until it is
// acknowledged: the model every node must end up agreeing with.
type load struct {
	c      *testCluster
	key    string
	urls   []string // fixed ports: a restarted node keeps its URL
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	acked  map[string]bool
	ackAt  []time.Time
	maxSeq uint64
	errs   []error
	// seqOf is the seq each acknowledged event got by its 202 (the seq of
	// its batch's last event, counted back); retried says whether its
	// batch was sent more than once (an earlier copy may be stored).
	seqOf   map[string]uint64
	retried map[string]bool
}

func (c *testCluster) startLoad(key string, writers, batch int) *load {
	l := &load{c: c, key: key, stop: make(chan struct{}), acked: map[string]bool{}, seqOf: map[string]uint64{}, retried: map[string]bool{}}
	for _, p := range c.nodes {
		l.urls = append(l.urls, p.URL)
	}
	for w := 0; w < writers; w++ {
		l.wg.Add(1)
		go l.writer(w, batch)
	}
	return l
}

func (l *load) writer(w, batch int) {
	defer l.wg.Done()
	client := &http.Client{Timeout: 10 * time.Second}
	for b := 0; ; b++ {
		select {
		case <-l.stop:
			return
		default:
		}
		var body strings.Builder
		ids := make([]string, batch)
		for i := range ids {
			ids[i] = fmt.Sprintf("w%d-b%d-e%d", w, b, i)
			fmt.Fprintf(&body, `{"id":%q,"session_id":"s%d","category":"c%d","name":"n","data":{"w":%d,"b":%d},"timestamp":"2021-01-01T09:00:00Z"}`+"\n", ids[i], b%20, w, w, b)
		}
		// A batch is retried until acknowledged, even after stop: a batch
		// in doubt at the end must be settled, so that the model knows
		// whether it was acknowledged.
		attempts := 0
		err := theeyetest.Poll(90*time.Second, func() error {
			attempts++
			a, err := postOnce(client, l.urls[rand.IntN(len(l.urls))], l.key, []byte(body.String()))
			if err != nil {
				return err
			}
			l.mu.Lock()
			for i, id := range ids {
				l.acked[id] = true
				l.seqOf[id] = a.Seq - uint64(len(ids)-1-i)
				l.retried[id] = attempts > 1
			}
			l.ackAt = append(l.ackAt, time.Now())
			l.maxSeq = max(l.maxSeq, a.Seq)
			l.mu.Unlock()
			return nil
		})
		if err != nil {
			l.mu.Lock()
			l.errs = append(l.errs, fmt.Errorf("writer %d batch %d never acknowledged: %w", w, b, err))
			l.mu.Unlock()
			return
		}
	}
}

func postOnce(client *http.Client, url, key string, body []byte) (ack, error) {
	var a ack
	req, _ := http.NewRequest("POST", url+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 202 {
		return a, fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return a, json.Unmarshal(b, &a)
}

// acks waits until at least n more batches are acknowledged.
func (l *load) waitAcks(n int) {
	l.c.t.Helper()
	l.mu.Lock()
	target := len(l.ackAt) + n
	l.mu.Unlock()
	waitFor(l.c.t, 60*time.Second, fmt.Sprintf("%d acknowledged batches", n), func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.errs) > 0 {
			l.c.t.Fatal(l.errs[0])
		}
		if len(l.ackAt) < target {
			return fmt.Errorf("%d of %d", len(l.ackAt), target)
		}
		return nil
	})
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
	for _, err := range l.errs {
		l.c.t.Error(err)
	}
}

// longestGap is the longest time between two consecutive acknowledgements.
func (l *load) longestGap() time.Duration {
	at := slices.Clone(l.ackAt)
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	var g time.Duration
	for i := 1; i < len(at); i++ {
		g = max(g, at[i].Sub(at[i-1]))
	}
	return g
}

// verify checks the model on every node: each acknowledged event is there
// exactly once, and every node holds the same events under the same seqs.
func (c *testCluster) verify(l *load) {
	c.t.Helper()
	var ref map[uint64]string
	for i, p := range c.nodes {
		evs := p.exportAll(fmt.Sprintf("/v1/events?min_seq=%d&wait=60s", l.maxSeq))
		bySeq := map[uint64]string{}
		seen := map[string]bool{}
		for _, e := range evs {
			if seen[e.ID] {
				c.t.Fatalf("n%d: event %s indexed twice", i+1, e.ID)
			}
			seen[e.ID] = true
			bySeq[e.Seq] = e.ID
		}
		for id := range l.acked {
			if !seen[id] {
				c.t.Fatalf("n%d: acknowledged event %s is missing (%d events there, %d acknowledged)", i+1, id, len(evs), len(l.acked))
			}
		}
		if ref == nil {
			ref = bySeq
			continue
		}
		// Nodes may differ only in events indexed past maxSeq by one of
		// them; below it they must agree exactly.
		for seq, id := range ref {
			if seq <= l.maxSeq && bySeq[seq] != id {
				c.t.Fatalf("n%d holds %q at seq %d, n1 %q", i+1, bySeq[seq], seq, id)
			}
		}
		for seq, id := range bySeq {
			if seq <= l.maxSeq && ref[seq] != id {
				c.t.Fatalf("n%d holds %q at seq %d, n1 %q", i+1, id, seq, ref[seq])
			}
		}
	}
}

// TestAckedEventsSurviveLeaderKill9 (invariants 1 and 2): four writers
// post to random nodes; the leader is killed with SIGKILL mid-load, round
// after round, and restarted. Every acknowledged event is on every node
// exactly once, under the same seq.
func TestAckedEventsSurviveLeaderKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false)
	key := c.nodes[1].createApp("web") // through a follower: forwarded
	l := c.startLoad(key, 4, 20)
	for round := 0; round < 3; round++ {
		l.waitAcks(10)
		victim := c.leader()
		victim.kill9()
		l.waitAcks(10) // writes go on without it
		victim.restart()
		c.waitMembers(3)
	}
	l.waitAcks(5)
	l.finish()
	t.Logf("%d events acknowledged; longest gap between acknowledgements: %s", len(l.acked), l.longestGap())
	c.verify(l)
}

// TestFollowerCatchesUpThroughSnapshot: a follower down while the others
// moved on by more than the snapshot threshold (and truncated their Raft
// logs) catches up through a snapshot that streams log/ and ends identical.
func TestFollowerCatchesUpThroughSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false, "--raft-snapshot-threshold", "32", "--raft-trailing-logs", "8", "--raft-snapshot-interval", "200ms")
	key := c.nodes[0].createApp("web")
	lead := c.leader()
	var lag *proc
	for _, p := range c.nodes {
		if p != lead {
			lag = p
			break
		}
	}
	lag.stop()
	l := &load{c: c, key: key, acked: map[string]bool{}}
	client := &http.Client{Timeout: 10 * time.Second}
	for b := 0; b < 120; b++ {
		id := fmt.Sprintf("snap-%d", b)
		a, err := postOnce(client, lead.URL, key, []byte(`{"id":"`+id+`","session_id":"s","category":"c","name":"n","data":{"b":1},"timestamp":"2021-01-01T09:00:00Z"}`))
		if err != nil {
			t.Fatal(err)
		}
		l.acked[id] = true
		l.maxSeq = a.Seq
	}
	waitFor(t, 30*time.Second, "a snapshot past the stopped follower", func() error {
		snaps, _ := filepath.Glob(filepath.Join(lead.DataDir, "raft", "snapshots", "snapshots", "*", "meta.json"))
		if len(snaps) == 0 {
			return fmt.Errorf("no snapshot yet")
		}
		return nil
	})
	lag.restart()
	c.waitMembers(3)
	c.verify(l)
	// The line comes once the appended frames are synced, which may be
	// after the indexer has made them visible to the queries above.
	waitFor(t, 10*time.Second, "the follower to log its catch-up through a snapshot", func() error {
		if !strings.Contains(lag.Out.String(), "caught up from a snapshot") {
			return fmt.Errorf("not in its log:\n%s", lag.Out.String())
		}
		return nil
	})
}

// TestPartitionedMinorityNeverAcks: a node cut off from the others (here
// the leader) acknowledges nothing; the majority goes on; after healing,
// nothing the majority acknowledged is missing anywhere.
func TestPartitionedMinorityNeverAcks(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, true)
	key := c.nodes[0].createApp("web")
	l := c.startLoad(key, 2, 10)
	l.waitAcks(5)
	lead := c.leader()
	li := slices.Index(c.nodes, lead)
	c.partition(li)
	client := &http.Client{Timeout: 8 * time.Second}
	for i := 0; i < 5; i++ {
		body := fmt.Sprintf(`{"id":"minority-%d","session_id":"m","category":"c","name":"n","data":{"i":1},"timestamp":"2021-01-01T09:00:00Z"}`, i)
		if a, err := postOnce(client, lead.URL, key, []byte(body)); err == nil {
			t.Fatalf("the partitioned node acknowledged seq %d", a.Seq)
		}
	}
	// The majority elects a leader and acknowledges writes meanwhile.
	var others []*proc
	for _, p := range c.nodes {
		if p != lead {
			others = append(others, p)
		}
	}
	waitFor(t, 30*time.Second, "a majority leader", func() error {
		for _, p := range others {
			if v, err := c.view(p); err == nil && v.Leader != "" && v.Leader != fmt.Sprintf("n%d", li+1) {
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	majorityBody := `{"id":"majority-1","session_id":"m","category":"c","name":"n","data":{"i":2},"timestamp":"2021-01-01T09:00:00Z"}`
	waitFor(t, 30*time.Second, "a write acknowledged by the majority", func() error {
		a, err := postOnce(client, others[0].URL, key, []byte(majorityBody))
		if err == nil {
			l.mu.Lock()
			l.acked["majority-1"] = true
			l.maxSeq = max(l.maxSeq, a.Seq)
			l.mu.Unlock()
		}
		return err
	})
	c.heal()
	l.waitAcks(5)
	l.finish()
	c.waitMembers(3)
	c.verify(l)
}

// TestRollingRestartUnderLoad: each node in turn is stopped (SIGTERM) and
// restarted while writers go on; no acknowledged event is lost.
func TestRollingRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false)
	key := c.nodes[0].createApp("web")
	l := c.startLoad(key, 4, 10)
	for _, p := range c.nodes {
		l.waitAcks(5)
		p.stop()
		l.waitAcks(5)
		p.restart()
		c.waitMembers(3)
	}
	l.waitAcks(5)
	l.finish()
	c.verify(l)
}

// TestJoinNeedsTheClusterKey: a join that sends a cluster key in clear
// (as v1 did) is refused with 401, and a node started with the wrong key
// gives up: its proof does not verify.
func TestJoinNeedsTheClusterKey(t *testing.T) {
	c := startCluster(t, 1, false)
	body := []byte(`{"id":"intruder","raft_addr":"127.0.0.1:1","http_addr":"http://127.0.0.1:1"}`)
	for _, key := range []string{"wrong", testClusterKey} {
		st, b, _ := do(t, "POST", c.nodes[0].URL+"/v1/cluster/nodes", "", "application/json", body, "X-Eye-Cluster-Key", key)
		if st != 401 || !strings.Contains(string(b), "X-Eye-Cluster-Key is not accepted") {
			t.Fatalf("join with the cluster key in clear: %d %s, want 401", st, b)
		}
	}
	// A forwarded marker without a valid proof grants nothing either.
	st, b, _ := do(t, "POST", c.nodes[0].URL+"/v1/apps", testAdminKey, "application/json", []byte(`{"name":"x"}`), "X-Eye-Forwarded", "n9")
	if st != 401 {
		t.Fatalf("forwarded request without a proof: %d %s, want 401", st, b)
	}
	p := newProc(t, t.TempDir(), "--node-id", "n2", "--cluster-key", "wrong", "--join", c.nodes[0].URL)
	p.startNoWait()
	t.Cleanup(p.kill9)
	select {
	case <-p.Done:
	case <-time.After(60 * time.Second):
		t.Fatal("a node with the wrong cluster key kept running")
	}
	if p.Cmd.ProcessState.ExitCode() == 0 || !strings.Contains(p.Out.String(), "refused (401)") {
		t.Fatalf("exit %d, output:\n%s", p.Cmd.ProcessState.ExitCode(), p.Out.String())
	}
	if v, _ := c.view(c.nodes[0]); len(v.Nodes) != 1 {
		t.Fatalf("the cluster has %d members after refused joins", len(v.Nodes))
	}
}

// TestRemoveAndReplaceNode: DELETE /v1/cluster/nodes/{id} through a
// follower removes a member; the two left keep writing; a new node joins
// in its place and ends with every event.
func TestRemoveAndReplaceNode(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false)
	key := c.nodes[0].createApp("web")
	lead := c.leader()
	var follower, victim *proc
	for _, p := range c.nodes {
		if p == lead {
			continue
		}
		if follower == nil {
			follower = p
		} else {
			victim = p
		}
	}
	vid := fmt.Sprintf("n%d", slices.Index(c.nodes, victim)+1)
	st, b, _ := do(t, "DELETE", follower.URL+"/v1/cluster/nodes/"+vid, testAdminKey, "", nil)
	if st != 200 {
		t.Fatalf("remove %s: %d %s", vid, st, b)
	}
	victim.stop()
	c.nodes = slices.DeleteFunc(c.nodes, func(p *proc) bool { return p == victim })
	c.waitMembers(2)
	a := follower.post(key, "application/json", []byte(exPageview))

	p := newProc(t, t.TempDir(), "--node-id", "n4", "--cluster-key", testClusterKey, "--join", follower.URL)
	t.Cleanup(p.kill9)
	p.start()
	c.nodes = append(c.nodes, p)
	c.waitMembers(3)
	if pg := p.get(fmt.Sprintf("/v1/sessions/%s/events?min_seq=%d&wait=30s", exSession, a.Seq)); len(pg.Events) != 1 {
		t.Fatalf("the new node holds %d events, want 1", len(pg.Events))
	}
}
