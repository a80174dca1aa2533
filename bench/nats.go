package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// The NATS JetStream baseline of W2 (issue 14): three nats-server
// processes on loopback in one JetStream cluster, a stream with 3 replicas
// on file storage and `sync_interval: always` (every write fsynced before
// it is acknowledged: the durability of our ack after a quorum commit),
// loaded as W2 loads our cluster: W2Clients clients, each publishing
// batches of BatchSize of W2's events (one message each) asynchronously
// and waiting for every PubAck of a batch before the next, all to the
// stream leader. Its sustained figures are measured as ours: from the
// first publish until every replica has the last message and the three
// processes have gone quiet.

// natsVersion is the nats-server `make bench` builds (go install); the
// newest the module proxy serves here.
const natsVersion = "v2.15.2"

const (
	natsStream  = "BENCH"
	natsSubject = "bench.events"
)

// natsCluster is the three running servers.
type natsCluster struct {
	servers []*theeyetest.Node
	urls    map[string]string // server name → client URL
	nc      *nats.Conn
	js      jetstream.JetStream
}

// natsConf is one server's configuration file.
func natsConf(name, dir string, port, clusterPort int, routes []int) string {
	var rs []string
	for _, p := range routes {
		rs = append(rs, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	return fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
  sync_interval: always
}
cluster {
  name: eyebench
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, name, port, dir, clusterPort, strings.Join(rs, ", "))
}

// startNATS starts the cluster and creates the stream.
func (s *Suite) startNATS(ctx context.Context) (_ *natsCluster, err error) {
	c := &natsCluster{urls: map[string]string{}}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	ports := make([]int, 6)
	for i := range ports {
		if ports[i], err = theeyetest.ClosedPort(); err != nil {
			return nil, err
		}
	}
	var all []string
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("nats%d", i+1)
		dir := filepath.Join(s.cfg.TmpDir, "nats", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("nats: %w", err)
		}
		conf := filepath.Join(dir, "server.conf")
		if err := os.WriteFile(conf, []byte(natsConf(name, filepath.Join(dir, "js"), ports[i], ports[3+i], ports[3:])), 0o644); err != nil {
			return nil, fmt.Errorf("nats: %w", err)
		}
		n := &theeyetest.Node{Bin: s.cfg.NatsBin, Args: []string{"-c", conf}, Name: "nats-server " + name, OutTail: outTail, Procs: s.procs}
		if err := n.StartNoWait(); err != nil {
			return nil, err
		}
		c.servers = append(c.servers, n)
		c.urls[name] = fmt.Sprintf("nats://127.0.0.1:%d", ports[i])
		all = append(all, c.urls[name])
	}
	// The JetStream meta group needs a leader before a stream can be made.
	err = theeyetest.PollContext(ctx, 60*time.Second, func() error {
		for _, n := range c.servers {
			if !n.Alive() {
				return theeyetest.Stop(fmt.Errorf("%s exited: %s", n.Name, n.Out.String()))
			}
		}
		if c.nc == nil {
			nc, err := nats.Connect(strings.Join(all, ","), nats.Name("eyebench admin"))
			if err != nil {
				return err
			}
			c.nc = nc
			if c.js, err = jetstream.New(nc); err != nil {
				return err
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := c.js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{Name: natsStream, Subjects: []string{natsSubject},
			Storage: jetstream.FileStorage, Replicas: 3})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("nats: stream: %w", err)
	}
	return c, nil
}

func (c *natsCluster) stop() {
	if c.nc != nil {
		c.nc.Close()
	}
	for _, n := range c.servers {
		n.Kill9()
	}
}

func (c *natsCluster) pids() []int {
	pids := make([]int, len(c.servers))
	for i, n := range c.servers {
		pids[i] = n.Cmd.Process.Pid
	}
	return pids
}

// info is the stream's state as its leader tells it.
func (c *natsCluster) info(ctx context.Context) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, natsStream)
	if err != nil {
		return nil, fmt.Errorf("nats stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("nats stream info: %w", err)
	}
	return info, nil
}

// allReplicas reports whether every replica has stored seq.
func allReplicas(info *jetstream.StreamInfo, seq uint64) bool {
	if info.State.LastSeq < seq || info.Cluster == nil {
		return false
	}
	for _, p := range info.Cluster.Replicas {
		if !p.Current || p.Lag > 0 || p.Offline {
			return false
		}
	}
	return true
}

// natsW2 is one W2 load on the NATS cluster.
func (s *Suite) natsW2(ctx context.Context, c *natsCluster) (Workload, sustained, error) {
	info, err := c.info(ctx)
	if err != nil {
		return Workload{}, sustained{}, err
	}
	if info.Cluster == nil || c.urls[info.Cluster.Leader] == "" {
		return Workload{}, sustained{}, errors.New("nats: the stream has no leader")
	}
	leader := c.urls[info.Cluster.Leader]
	gen := w2Gen()
	msgs := singleBodies(gen, 64*s.cfg.BatchSize) // W2's events, one message each
	pubs := make([]jetstream.JetStream, s.cfg.W2Clients)
	for i := range pubs {
		nc, err := nats.Connect(leader, nats.Name(fmt.Sprintf("eyebench %d", i)))
		if err != nil {
			return Workload{}, sustained{}, fmt.Errorf("nats: %w", err)
		}
		defer nc.Close()
		if pubs[i], err = jetstream.New(nc); err != nil {
			return Workload{}, sustained{}, fmt.Errorf("nats: %w", err)
		}
	}
	pids := c.pids()
	if err := s.waitRest(ctx, "the NATS servers", pids); err != nil {
		return Workload{}, sustained{}, err
	}
	seq0 := info.State.LastSeq
	cpu0, err := pidsCPU(pids)
	if err != nil {
		return Workload{}, sustained{}, err
	}
	ld := &loadRun{seq0: seq0, begin: time.Now()}
	batch := s.cfg.BatchSize
	st, err := ClosedLoop(ctx, s.cfg.W2Clients, s.cfg.Warmup, s.cfg.Duration, s.cfg.Bucket, func(ctx context.Context, w int, i int64) (int, int, error) {
		futs := make([]jetstream.PubAckFuture, 0, batch)
		size := 0
		for k := 0; k < batch; k++ {
			m := msgs[(i*int64(batch)+int64(k))%int64(len(msgs))]
			f, err := pubs[w].PublishAsync(natsSubject, m)
			if err != nil {
				return 0, 0, fmt.Errorf("nats publish: %w", err)
			}
			futs = append(futs, f)
			size += len(m)
		}
		for _, f := range futs {
			select {
			case a := <-f.Ok():
				ld.acked(a.Sequence)
			case err := <-f.Err():
				return 0, 0, fmt.Errorf("nats ack: %w", err)
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			}
		}
		return batch, size, nil
	})
	if err != nil {
		return Workload{}, sustained{}, fmt.Errorf("nats W2: %w", err)
	}
	ld.loadEnd = time.Now()
	last := ld.last.Load()
	u := sustained{Events: int64(last - seq0), LoadS: ld.loadEnd.Sub(ld.begin).Seconds()}
	err = theeyetest.PollContext(ctx, 5*time.Minute, func() error {
		info, err := c.info(ctx)
		if err != nil {
			return err
		}
		if !allReplicas(info, last) {
			return errors.New("a replica is behind")
		}
		return nil
	})
	if err != nil {
		return Workload{}, u, fmt.Errorf("nats: every replica to store seq %d: %w", last, err)
	}
	u.DoneS = time.Since(ld.begin).Seconds()
	if u, err = s.quietDown(ctx, pids, ld.begin, cpu0, u); err != nil {
		return Workload{}, u, err
	}
	w := Workload{ID: "nats-jetstream", Variant: "W2 load R3 sync always",
		Parameters: map[string]any{"clients": s.cfg.W2Clients, "events_per_batch": batch, "warmup_s": s.cfg.Warmup.Seconds(),
			"duration_s": s.cfg.Duration.Seconds(), "target": "stream leader", "nats_server": natsVersion,
			"stream": "replicas 3, file storage, sync_interval always; one message per event, PublishAsync ×batch then every PubAck"},
		Figures: latencyFigures(st), Runs: map[string]Stats{"batch": st}}
	u.figures(w.Figures, "stored_all_replicas_events_per_s")
	if !u.Quiet {
		s.note("NATS W2: the servers were still busy %s after every replica had stored everything: CPU counted until then", s.quietDeadline())
	}
	return w, u, nil
}
