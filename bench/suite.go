package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/theeye/theeye/client"
	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// Config is what one run of the suite does.
type Config struct {
	Quick     bool
	Workloads map[string]bool // W1 … W9; empty means all
	Events    int64           // W4 store size
	Profile   bool            // start the nodes with --pprof
	// ProfileDir, with Profile, gets a CPU and an allocation profile of
	// every node per measured workload.
	ProfileDir string

	Clients    int           // W1 concurrent clients
	W2Clients  int           // W2 concurrent clients
	BatchSize  int           // W2 events per request
	Warmup     time.Duration // before every closed-loop measurement
	Duration   time.Duration // closed-loop measurement
	W3Rate     float64       // events/s
	W3Duration time.Duration
	W8Duration time.Duration // W8's stream latency, at W3Rate
	W4Duration time.Duration // per query kind
	W9Duration time.Duration // per offered rate
	W2Rounds   int           // W2 on 3 nodes: rounds, each ours then NATS JetStream's
	LoadBudget time.Duration // the most W4 may spend loading its store
	Bucket     time.Duration // throughput series resolution

	Bin string // theeye binary
	// NatsBin is nats-server, for W2's NATS JetStream baseline ("": skipped).
	NatsBin string
	NoopBin string // this program (run with "noop")
	TmpDir  string
	Logger  *slog.Logger
	// Progress is told what runs now (a step out of Steps()).
	Progress func(step string)
}

// DefaultConfig is the full run; quick shortens every workload.
func DefaultConfig(quick bool) Config {
	c := Config{Clients: 64, W2Clients: 16, BatchSize: 100, W3Rate: 5000, Bucket: 250 * time.Millisecond, W2Rounds: 3}
	if quick {
		c.Quick = true
		c.W2Rounds = 2
		c.Events = 100_000
		c.Warmup, c.Duration = 1*time.Second, 4*time.Second
		c.W3Duration, c.W4Duration = 6*time.Second, 3*time.Second
		c.W8Duration = 6 * time.Second
		c.W9Duration = 10 * time.Second
		c.LoadBudget = 30 * time.Second
	} else {
		c.Events = 10_000_000
		c.Warmup, c.Duration = 3*time.Second, 20*time.Second
		c.W3Duration, c.W4Duration = 60*time.Second, 15*time.Second
		c.W8Duration = 30 * time.Second
		c.W9Duration = 60 * time.Second
		c.LoadBudget = 6 * time.Minute
		c.Bucket = time.Second
	}
	return c
}

func (c Config) runs(w string) bool { return len(c.Workloads) == 0 || c.Workloads[w] }

const (
	adminKey   = "eye_bench_admin_key"
	clusterKey = "eye-bench-cluster-key"
)

// Suite runs the workloads against real processes.
type Suite struct {
	cfg    Config
	procs  *theeyetest.Procs
	http   *http.Client
	res    *Result
	logger *slog.Logger
	// rawBytes counts the JSON bytes of the events acknowledged per target
	// (for W6), keyed by target name.
	mu       sync.Mutex
	rawBytes map[string]int64
}

// NewSuite prepares a run; procs is where started processes are tracked.
func NewSuite(cfg Config, procs *theeyetest.Procs, res *Result) *Suite {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string) {}
	}
	tr := &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 90 * time.Second,
		DisableCompression: true, ResponseHeaderTimeout: 60 * time.Second,
	}
	return &Suite{cfg: cfg, procs: procs, http: &http.Client{Transport: tr}, res: res, logger: cfg.Logger, rawBytes: map[string]int64{}}
}

// Steps is how many progress steps Run reports.
func (s *Suite) Steps() int { return 12 }

// note adds a line to the result's notes and logs it.
func (s *Suite) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.res.Notes = append(s.res.Notes, msg)
	s.logger.Warn(msg)
}

// Run runs every selected workload; a failing phase is noted and the
// others still run, unless ctx is done.
func (s *Suite) Run(ctx context.Context) error {
	phases := []struct {
		name string
		on   bool
		fn   func(context.Context) error
	}{
		{"baseline fsync", s.cfg.runs("W1") || s.cfg.runs("W2"), s.fsyncCeiling},
		{"baseline http no-op", s.cfg.runs("W1") || s.cfg.runs("W2"), s.noopCeiling},
		{"W1/W2 1 node", s.cfg.runs("W1") || s.cfg.runs("W2") || s.cfg.runs("W6") || s.cfg.runs("W7"), func(ctx context.Context) error { return s.ingestPhase(ctx, 1) }},
		{"W3/W8/W1/W2/W9 3 nodes", s.cfg.runs("W1") || s.cfg.runs("W2") || s.cfg.runs("W3") || s.cfg.runs("W8") || s.cfg.runs("W9"), func(ctx context.Context) error { return s.ingestPhase(ctx, 3) }},
		{"W4/W5/W8 store", s.cfg.runs("W4") || s.cfg.runs("W5") || s.cfg.runs("W8"), s.storePhase},
	}
	var errs []error
	for _, p := range phases {
		if !p.on {
			continue
		}
		if err := ctx.Err(); err != nil {
			s.note("%s skipped: %v", p.name, err)
			errs = append(errs, err)
			continue
		}
		s.cfg.Progress(p.name)
		if err := p.fn(ctx); err != nil {
			s.note("%s failed: %v", p.name, err)
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
		}
		s.procs.KillAll()
	}
	s.goals()
	return errors.Join(errs...)
}

// fsyncCeiling appends the bytes of W1 (one event) and W2 (100 events)
// to a file with one fdatasync per batch, on the disk the nodes use.
func (s *Suite) fsyncCeiling(ctx context.Context) error {
	gen := EventGen{Sessions: 100_000, Base: time.Now().Add(-time.Hour), Step: time.Millisecond}
	d := s.cfg.Duration / 2
	for _, batch := range []int{1, s.cfg.BatchSize} {
		body := gen.NDJSON(0, batch)
		path := filepath.Join(s.cfg.TmpDir, "fsync-ceiling")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("fsync ceiling: %w", err)
		}
		rec := NewRecorder(time.Now(), s.cfg.Bucket)
		start := time.Now()
		for time.Since(start) < d && ctx.Err() == nil {
			t0 := time.Now()
			if _, err := f.Write(body); err != nil {
				f.Close()
				return fmt.Errorf("fsync ceiling: %w", err)
			}
			if err := fdatasync(f); err != nil {
				f.Close()
				return fmt.Errorf("fsync ceiling: %w", err)
			}
			t1 := time.Now()
			rec.Record(t1, t1.Sub(t0), batch, len(body), nil)
		}
		elapsed := time.Since(start)
		f.Close()
		os.Remove(path)
		st := rec.Stats(elapsed)
		w := Workload{ID: "fsync", Variant: fmt.Sprintf("batch=%d", batch),
			Parameters: map[string]any{"batch_events": batch, "batch_bytes": len(body), "duration_s": elapsed.Seconds()},
			Figures:    latencyFigures(st), Runs: map[string]Stats{"fdatasync": st}}
		w.Figures["fsyncs_per_s"] = float64(st.Ops) / elapsed.Seconds()
		s.res.Baselines = append(s.res.Baselines, w)
	}
	return nil
}

// latencyFigures are the usual figures of one run.
func latencyFigures(st Stats) map[string]float64 {
	f := map[string]float64{
		"events_per_s": st.EventsPerSec(),
		"p50_ms":       st.Latency.P50, "p99_ms": st.Latency.P99, "p999_ms": st.Latency.P999,
	}
	if st.Elapsed > 0 && st.Bytes > 0 {
		f["mb_per_s"] = float64(st.Bytes) / st.Elapsed.Seconds() / 1e6
	}
	if st.Errors > 0 {
		f["errors"] = float64(st.Errors)
	}
	return f
}

// noopCeiling runs the W1 (and W2) load against the no-op server process.
func (s *Suite) noopCeiling(ctx context.Context) error {
	n := newNode(s.procs, "noop", "", &theeyetest.Node{Bin: s.cfg.NoopBin, AdminKey: adminKey,
		Args: []string{"noop", "--http", "127.0.0.1:0", "--admin-key", adminKey}})
	if err := n.StartContext(ctx, 30*time.Second); err != nil {
		return err
	}
	defer n.Kill9()
	t := target{name: "noop", url: n.URL, key: "eye_noop_ingest"}
	if s.cfg.runs("W1") {
		w, err := s.w1(ctx, t, []*Node{n})
		if err != nil {
			return err
		}
		w.ID, w.Variant = "http-noop", "W1 load"
		s.res.Baselines = append(s.res.Baselines, w)
	}
	if s.cfg.runs("W2") {
		w, err := s.w2(ctx, t, []*Node{n})
		if err != nil {
			return err
		}
		w.ID, w.Variant = "http-noop", "W2 load"
		s.res.Baselines = append(s.res.Baselines, w)
	}
	return nil
}

// target is where a workload sends its requests.
type target struct {
	name string
	url  string // the node requests go to
	key  string // ingest (and read) key
	// drain: the target is our cluster, whose nodes' indexing the load
	// waits for (the sustained figures), not the no-op server.
	drain bool
}

// startCluster starts n nodes (n1 bootstraps, the others join it) and
// returns them with the leader first.
func (s *Suite) startCluster(ctx context.Context, name string, n int, extra ...string) ([]*Node, error) {
	var nodes []*Node
	for i := 1; i <= n; i++ {
		spec := NodeSpec{Bin: s.cfg.Bin, ID: fmt.Sprintf("n%d", i), DataDir: filepath.Join(s.cfg.TmpDir, name, fmt.Sprintf("n%d", i)),
			AdminKey: adminKey, PProf: s.cfg.Profile, Extra: extra}
		if n > 1 {
			spec.ClusterKey = clusterKey
		}
		if i > 1 {
			spec.Join = nodes[0].URL
		}
		nd, err := StartNode(ctx, s.procs, spec, 60*time.Second)
		if err != nil {
			for _, o := range nodes {
				o.Kill9()
			}
			return nil, err
		}
		nodes = append(nodes, nd)
	}
	if n > 1 {
		// Wait until every node knows the same leader and is a member.
		leader := ""
		err := theeyetest.PollContext(ctx, 60*time.Second, func() error {
			leader = ""
			for _, nd := range nodes {
				st, err := nd.Self(ctx, s.http)
				if err != nil {
					return err
				}
				if st.Leader == "" || (leader != "" && st.Leader != leader) {
					return fmt.Errorf("%s sees leader %q, another %q", nd.ID, st.Leader, leader)
				}
				leader = st.Leader
			}
			if m := s.members(ctx, nodes[0]); m != n {
				return fmt.Errorf("%d members", m)
			}
			return nil
		})
		if err != nil {
			return nodes, fmt.Errorf("cluster %s: no agreed leader with %d members: %w", name, n, err)
		}
		for i, nd := range nodes {
			if nd.ID == leader {
				nodes[0], nodes[i] = nodes[i], nodes[0]
			}
		}
	}
	return nodes, nil
}

// members counts the voters n sees in GET /v1/cluster.
func (s *Suite) members(ctx context.Context, n *Node) int {
	cl, err := client.New(client.Config{Servers: []string{n.URL}, Key: adminKey, HTTPClient: s.http, MaxRetries: -1})
	if err != nil {
		return 0
	}
	defer cl.Close(ctx)
	c, err := cl.ClusterStatus(ctx)
	if err != nil {
		return 0
	}
	return len(c.Nodes)
}

// ingestKey creates an app through the client and returns its key.
func (s *Suite) ingestKey(ctx context.Context, url string) (string, error) {
	cl, err := client.New(client.Config{Servers: []string{url}, Key: adminKey, HTTPClient: s.http})
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	defer cl.Close(ctx)
	_, key, err := cl.CreateApp(ctx, "bench")
	if err != nil {
		return "", fmt.Errorf("create app: %w", err)
	}
	rk, err := cl.CreateKey(ctx, "bench-read", []client.Scope{client.ScopeIngest, client.ScopeRead}, "bench")
	if err != nil {
		return key.Secret, nil // the ingest key is enough for ingest-only phases
	}
	return rk.Secret, nil
}

// post sends one ingest request and returns the acknowledged seq.
func (s *Suite) post(ctx context.Context, t target, ct string, body []byte) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+t.key)
	req.Header.Set("Content-Type", ct)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	var buf [256]byte
	n, _ := io.ReadFull(resp.Body, buf[:])
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("post: %s: %s", resp.Status, bytes.TrimSpace(buf[:n]))
	}
	return parseSeq(buf[:n]), nil
}

// parseSeq reads "seq":N from an ack without a JSON decoder.
func parseSeq(b []byte) uint64 {
	i := bytes.Index(b, []byte(`"seq":`))
	if i < 0 {
		return 0
	}
	b = b[i+6:]
	j := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	v, _ := strconv.ParseUint(string(b[:j]), 10, 64)
	return v
}

// open sends a GET with t's key (asking for NDJSON when ndjson) and
// returns the response when it is a 200; any other status is an error
// that quotes the start of the body. The caller closes the body.
func (s *Suite) open(ctx context.Context, t target, path string, ndjson bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+t.key)
	if ndjson {
		req.Header.Set("Accept", "application/x-ndjson")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return resp, nil
}

// get sends a read request and returns the bytes of the body it read.
func (s *Suite) get(ctx context.Context, t target, path string, ndjson bool) (int, error) {
	resp, err := s.open(ctx, t, path, ndjson)
	if err != nil {
		return 0, fmt.Errorf("get %w", err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return int(n), fmt.Errorf("get %s: %w", path, err)
	}
	return int(n), nil
}

// nodeUsage samples the CPU time of nodes, for CPU per event.
func nodeCPU(nodes []*Node) time.Duration {
	var total time.Duration
	for _, n := range nodes {
		if d, err := n.CPUTime(); err == nil {
			total += d
		}
	}
	return total
}

// singleBodies are pre-built single-event bodies (one JSON object each).
func singleBodies(gen EventGen, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = gen.Append(nil, int64(i))
	}
	return out
}

func (s *Suite) addRaw(name string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rawBytes[name] += n
}

// w1 is single-event POSTs from Clients concurrent clients.
func (s *Suite) w1(ctx context.Context, t target, nodes []*Node) (Workload, error) {
	gen := EventGen{Sessions: 100_000, Base: time.Now().Add(-time.Hour), Step: time.Microsecond}
	bodies := singleBodies(gen, 4096)
	variant := fmt.Sprintf("nodes=%d", len(nodes))
	defer s.profileNodes(ctx, nodes, "W1", variant, time.Now().Add(s.cfg.Warmup), s.cfg.Duration)()
	ld, err := s.startLoad(ctx, t, nodes)
	if err != nil {
		return Workload{}, fmt.Errorf("W1 %s: %w", t.name, err)
	}
	st, err := ClosedLoop(ctx, s.cfg.Clients, s.cfg.Warmup, s.cfg.Duration, s.cfg.Bucket, func(ctx context.Context, _ int, i int64) (int, int, error) {
		b := bodies[i%int64(len(bodies))]
		seq, err := s.post(ctx, t, "application/json", b)
		if err != nil {
			return 0, 0, err
		}
		ld.acked(seq)
		return 1, len(b), nil
	})
	if err != nil {
		return Workload{}, fmt.Errorf("W1 %s: %w", t.name, err)
	}
	ld.loadEnd = time.Now()
	cpu := nodeCPU(nodes) - ld.cpu0
	s.addRaw(t.name, st.Bytes)
	w := Workload{ID: "W1", Variant: variant,
		Parameters: map[string]any{"clients": s.cfg.Clients, "events_per_request": 1, "warmup_s": s.cfg.Warmup.Seconds(), "duration_s": s.cfg.Duration.Seconds(), "target": "leader"},
		Figures:    latencyFigures(st), Runs: map[string]Stats{"ack": st}}
	addCPU(w.Figures, cpu, st)
	if _, err := s.finishLoad(ctx, ld, w); err != nil {
		return w, fmt.Errorf("W1 %s: %w", t.name, err)
	}
	return w, nil
}

// addCPU adds the nodes' CPU per event (all nodes together; it includes
// the warm-up, so it slightly overstates).
func addCPU(f map[string]float64, cpu time.Duration, st Stats) {
	if st.Events > 0 && cpu > 0 {
		f["node_cpu_us_per_event"] = float64(cpu.Microseconds()) / float64(st.Events)
	}
}

// w2 is batches of BatchSize events (NDJSON) from W2Clients clients.
func (s *Suite) w2(ctx context.Context, t target, nodes []*Node) (Workload, error) {
	w, _, err := s.w2Run(ctx, t, nodes)
	return w, err
}

// w2Run is one W2 load, with its sustained figures when t is our cluster.
func (s *Suite) w2Run(ctx context.Context, t target, nodes []*Node) (Workload, sustained, error) {
	bodies := w2Bodies(s.cfg.BatchSize)
	variant := fmt.Sprintf("nodes=%d", len(nodes))
	defer s.profileNodes(ctx, nodes, "W2", variant, time.Now().Add(s.cfg.Warmup), s.cfg.Duration)()
	ld, err := s.startLoad(ctx, t, nodes)
	if err != nil {
		return Workload{}, sustained{}, fmt.Errorf("W2 %s: %w", t.name, err)
	}
	st, err := ClosedLoop(ctx, s.cfg.W2Clients, s.cfg.Warmup, s.cfg.Duration, s.cfg.Bucket, func(ctx context.Context, _ int, i int64) (int, int, error) {
		b := bodies[i%int64(len(bodies))]
		seq, err := s.post(ctx, t, "application/x-ndjson", b)
		if err != nil {
			return 0, 0, err
		}
		ld.acked(seq)
		return s.cfg.BatchSize, len(b), nil
	})
	if err != nil {
		return Workload{}, sustained{}, fmt.Errorf("W2 %s: %w", t.name, err)
	}
	ld.loadEnd = time.Now()
	cpu := nodeCPU(nodes) - ld.cpu0
	s.addRaw(t.name, st.Bytes)
	w := Workload{ID: "W2", Variant: variant,
		Parameters: map[string]any{"clients": s.cfg.W2Clients, "events_per_request": s.cfg.BatchSize, "warmup_s": s.cfg.Warmup.Seconds(), "duration_s": s.cfg.Duration.Seconds(), "target": "leader"},
		Figures:    latencyFigures(st), Runs: map[string]Stats{"batch": st}}
	addCPU(w.Figures, cpu, st)
	u, err := s.finishLoad(ctx, ld, w)
	if err != nil {
		return w, u, fmt.Errorf("W2 %s: %w", t.name, err)
	}
	return w, u, nil
}

// w2Bodies are W2's request bodies: 64 NDJSON batches of n events (the
// NATS baseline publishes the same events, one message each).
func w2Bodies(n int) [][]byte {
	gen := w2Gen()
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = gen.NDJSON(int64(i*n), n)
	}
	return bodies
}

func w2Gen() EventGen {
	return EventGen{Sessions: 100_000, Base: time.Now().Add(-time.Hour), Step: time.Microsecond}
}

// ingestPhase runs W1 and W2 (and W3 with 3 nodes) on a fresh cluster of
// n nodes, then measures W6 (disk per event) and W7 (peak RSS), then (3
// nodes) overloads it: W9, last, so W6 and W7 keep measuring W1–W3.
func (s *Suite) ingestPhase(ctx context.Context, n int) error {
	name := fmt.Sprintf("ingest-%d", n)
	nodes, err := s.startCluster(ctx, name, n)
	if err != nil {
		return err
	}
	defer func() {
		for _, nd := range nodes {
			nd.Kill9()
		}
	}()
	key, err := s.ingestKey(ctx, nodes[0].URL)
	if err != nil {
		return err
	}
	t := target{name: name, url: nodes[0].URL, key: key, drain: true}
	// W3 first, on the cluster at rest: after W2 it measured the
	// compactions W2 left behind (ack p50 43 ms against 4 ms at rest).
	w2 := s.w2
	if n > 1 {
		w2 = s.w2Rounds
	}
	var ws []Workload
	for _, r := range []struct {
		id, progress string
		on           bool
		run          func(context.Context, target, []*Node) (Workload, error)
	}{
		{"W3", "W3 open loop", n > 1, s.w3},
		{"W8", "W8 stream latency", n > 1, s.w8Stream},
		{"W1", fmt.Sprintf("W1 nodes=%d", n), true, s.w1},
		{"W2", fmt.Sprintf("W2 nodes=%d", n), true, w2},
	} {
		if !r.on || !s.cfg.runs(r.id) {
			continue
		}
		s.cfg.Progress(r.progress)
		if _, err := s.settle(ctx, nodes); err != nil {
			return err
		}
		w, err := r.run(ctx, t, nodes)
		if err != nil {
			return err
		}
		ws = append(ws, w)
	}
	s.attachBaselines(ws)
	s.res.Workloads = append(s.res.Workloads, ws...)
	// W6: wait until every node has applied and indexed everything.
	applied, err := s.settle(ctx, nodes)
	if err != nil {
		return err
	}
	s.mu.Lock()
	raw := s.rawBytes[name]
	s.mu.Unlock()
	s.storage(fmt.Sprintf("nodes=%d after W1–W3", n), nodes, int64(applied), raw)
	s.memory(fmt.Sprintf("nodes=%d during W1–W3", n), nodes)
	if n > 1 && s.cfg.runs("W9") {
		w9, err := s.w9(ctx, t, nodes)
		s.res.Workloads = append(s.res.Workloads, w9...)
		if err != nil {
			return err
		}
	}
	return nil
}

// settle waits until every node has indexed all that the first node
// (the leader) has applied, so that a workload does not pay for the
// indexing left over from the one before it (W3 right after W2 measured
// an ack p99 of 0.4-1 s against 11 ms on a cluster at rest). It returns
// the seq they all reached.
func (s *Suite) settle(ctx context.Context, nodes []*Node) (applied uint64, err error) {
	st, err := nodes[0].Self(ctx, s.http)
	if err != nil {
		return 0, err
	}
	for _, nd := range nodes {
		if err := nd.WaitIndexed(ctx, s.http, st.AppliedSeq, 2*time.Minute); err != nil {
			return 0, err
		}
	}
	return st.AppliedSeq, nil
}

// attachBaselines sets the ratio of W1/W2 to the no-op server's figures.
func (s *Suite) attachBaselines(ws []Workload) {
	for i := range ws {
		w := &ws[i]
		if w.ID != "W1" && w.ID != "W2" {
			continue
		}
		if b, ok := s.res.Find("http-noop", w.ID+" load"); ok && b.Figures["events_per_s"] > 0 {
			w.Baseline = "http-noop " + w.ID + " load"
			w.Ratio = w.Figures["events_per_s"] / b.Figures["events_per_s"]
		}
	}
}

// storage records W6: bytes on disk per event per node against raw JSON.
func (s *Suite) storage(variant string, nodes []*Node, events, raw int64) {
	if !s.cfg.runs("W6") || events == 0 {
		return
	}
	w := Workload{ID: "W6", Variant: variant, Parameters: map[string]any{"events": events, "raw_json_bytes": raw}, Figures: map[string]float64{}}
	if raw > 0 {
		w.Figures["raw_json_bytes_per_event"] = float64(raw) / float64(events)
	}
	var maxTotal float64
	for _, nd := range nodes {
		u, err := nd.Disk()
		if err != nil {
			s.note("W6 %s: %v", nd.ID, err)
			continue
		}
		e := float64(events)
		w.Figures[nd.ID+"_raft_b_per_event"] = float64(u.Raft) / e
		w.Figures[nd.ID+"_log_b_per_event"] = float64(u.Log) / e
		w.Figures[nd.ID+"_index_b_per_event"] = float64(u.Index) / e
		w.Figures[nd.ID+"_total_b_per_event"] = float64(u.Total) / e
		maxTotal = max(maxTotal, float64(u.Total)/e)
	}
	w.Figures["max_total_b_per_event_per_node"] = maxTotal
	if raw > 0 {
		w.Baseline = "raw JSON"
		w.Ratio = maxTotal / (float64(raw) / float64(events))
	}
	s.res.Workloads = append(s.res.Workloads, w)
}

// memory records W7: VmHWM of each node.
func (s *Suite) memory(variant string, nodes []*Node) {
	if !s.cfg.runs("W7") {
		return
	}
	w := Workload{ID: "W7", Variant: variant, Figures: map[string]float64{}}
	var peak float64
	for _, nd := range nodes {
		rss, err := nd.PeakRSS()
		if err != nil {
			s.note("W7 %s: %v", nd.ID, err)
			continue
		}
		w.Figures[nd.ID+"_peak_rss_mib"] = float64(rss) / (1 << 20)
		peak = max(peak, float64(rss)/(1<<20))
	}
	w.Figures["max_peak_rss_mib"] = peak
	s.res.Workloads = append(s.res.Workloads, w)
}

// w3 is single-event POSTs at a fixed rate to the leader; one ack in
// probeEvery is followed by a read with min_seq on a follower, which
// measures ack → visible there.
func (s *Suite) w3(ctx context.Context, t target, nodes []*Node) (Workload, error) {
	gen := EventGen{Sessions: 100_000, Base: time.Now().Add(-time.Hour), Step: time.Microsecond}
	bodies := singleBodies(gen, 4096)
	follower := target{name: t.name, url: nodes[len(nodes)-1].URL, key: t.key}
	probeEvery := int64(max(1, int(s.cfg.W3Rate/500))) // ~500 probes/s
	lag := NewRecorder(time.Now(), s.cfg.Bucket)
	var probes sync.WaitGroup
	var inflight atomic.Int64
	variant := fmt.Sprintf("nodes=%d rate=%.0f", len(nodes), s.cfg.W3Rate)
	defer s.profileNodes(ctx, nodes, "W3", variant, time.Now(), s.cfg.W3Duration)()
	cpu0 := nodeCPU(nodes)
	// Probes outlive the request that starts them (and the open loop's
	// window, whose context ends with it): they run under the suite's.
	probeCtx := ctx
	st, err := OpenLoop(ctx, s.cfg.W3Rate, s.cfg.W3Duration, 2048, s.cfg.Bucket, func(ctx context.Context, _ int, i int64) (int, int, error) {
		b := bodies[i%int64(len(bodies))]
		seq, err := s.post(ctx, t, "application/json", b)
		if err != nil {
			return 0, 0, err
		}
		if i%probeEvery == 0 && seq > 0 && inflight.Load() < 256 {
			acked := time.Now()
			sid := SessionID(gen.Session(i % int64(len(bodies))))
			probes.Add(1)
			inflight.Add(1)
			go func() {
				defer probes.Done()
				defer inflight.Add(-1)
				_, err := s.get(probeCtx, follower, "/v1/sessions/"+sid+"/events?limit=1&wait=30s&min_seq="+strconv.FormatUint(seq, 10), false)
				now := time.Now()
				lag.Record(now, now.Sub(acked), 1, 0, err)
			}()
		}
		return 1, len(b), nil
	})
	probes.Wait()
	if err != nil {
		return Workload{}, fmt.Errorf("W3: %w", err)
	}
	cpu := nodeCPU(nodes) - cpu0
	s.addRaw(t.name, st.Bytes)
	ls := lag.Stats(s.cfg.W3Duration)
	w := Workload{ID: "W3", Variant: variant,
		Parameters: map[string]any{"rate_per_s": s.cfg.W3Rate, "duration_s": s.cfg.W3Duration.Seconds(), "max_in_flight": 2048,
			"lag_probe_every": probeEvery, "lag_probe_node": "follower " + nodes[len(nodes)-1].ID, "target": "leader"},
		Figures: latencyFigures(st), Runs: map[string]Stats{"ack": st, "index_lag": ls}}
	w.Figures["lag_p50_ms"] = ls.Latency.P50
	w.Figures["lag_p99_ms"] = ls.Latency.P99
	if ls.Errors > 0 {
		w.Figures["lag_errors"] = float64(ls.Errors)
	}
	addCPU(w.Figures, cpu, st)
	return w, nil
}
