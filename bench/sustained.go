package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Sustained throughput (issue 14): what a cluster acknowledges is not what
// it can keep up with. A load's sustained figures run from the load's
// first request (its warm-up included) until every node has indexed the
// last acknowledged seq (for NATS: every replica has stored the last
// message) and then until the servers' processes have gone quiet (the
// flushes and compactions a burst leaves behind): the CPU they used over
// that span, per event, is what an event costs them.

// Quiet-down: the servers are quiet when their processes together used
// less than quietCoresPerProc cores each over quietWindow, read every
// quietPoll; the span ends where that window starts.
const (
	quietWindow       = time.Second
	quietPoll         = 100 * time.Millisecond
	quietCoresPerProc = 0.03
)

// sustained is what one load measured until the servers were done.
type sustained struct {
	Events      int64   // events stored by the load (seq growth), warm-up included
	LoadS       float64 // first request → last answer
	DoneS       float64 // first request → indexed on every node / stored on every replica
	QuietS      float64 // first request → the start of the first quiet window
	Quiet       bool    // false: the quiet-down deadline passed first (QuietS is then that deadline)
	CPU         time.Duration
	QuietCPUPct float64 // the processes' CPU over the quiet window, % of one core, all together
}

// figures are the sustained figures of a workload.
func (u sustained) figures(f map[string]float64, rateName string) {
	if u.DoneS > 0 {
		f[rateName] = float64(u.Events) / u.DoneS
	}
	f["catch_up_s"] = u.DoneS - u.LoadS
	f["quiet_down_s"] = u.QuietS - u.DoneS
	if u.Events > 0 {
		f["server_cpu_us_per_event"] = float64(u.CPU.Microseconds()) / float64(u.Events)
	}
	if u.QuietS > 0 {
		f["server_cpu_cores"] = u.CPU.Seconds() / u.QuietS
	}
}

// parseProcStat reads utime and stime (clock ticks) from the contents of
// /proc/<pid>/stat.
func parseProcStat(b []byte) (utime, stime int64, err error) {
	// The fields after the command name, which is in parentheses and may
	// hold spaces and parentheses itself.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("no command name")
	}
	f := bytes.Fields(b[i+1:])
	// state(3) … utime(14) stime(15): indexes 11 and 12 after the name.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%d fields after the command name", len(f))
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return ut, st, nil
}

// procCPU is the user+system CPU time process pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	ut, st, err := parseProcStat(b)
	if err != nil {
		return 0, fmt.Errorf("parse stat of %d: %w", pid, err)
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// pidsCPU is the CPU time the processes used together so far.
func pidsCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, p := range pids {
		d, err := procCPU(p)
		if err != nil {
			return total, err
		}
		total += d
	}
	return total, nil
}

// cpuSample is the processes' CPU time read at a time.
type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

// quietStart finds the first window of at least window, ending at a
// sample, over which the samples' CPU grew at less than cores (CPU
// seconds per second); it returns the index of the sample that starts it.
func quietStart(samples []cpuSample, window time.Duration, cores float64) (int, bool) {
	j := 0
	for i := range samples {
		for j+1 < i && samples[i].at.Sub(samples[j+1].at) >= window {
			j++
		}
		span := samples[i].at.Sub(samples[j].at)
		if i == j || span < window {
			continue
		}
		if (samples[i].cpu - samples[j].cpu).Seconds() < cores*span.Seconds() {
			return j, true
		}
	}
	return 0, false
}

// waitQuiet reads the processes' CPU every quietPoll until they have been
// quiet for quietWindow, or until deadline; it returns the start of the
// quiet window (or the last reading) and the CPU used until then.
func waitQuiet(ctx context.Context, pids []int, deadline time.Duration) (at time.Time, cpu time.Duration, quiet bool, pct float64, err error) {
	limit := time.Now().Add(deadline)
	cores := quietCoresPerProc * float64(len(pids))
	var samples []cpuSample
	tick := time.NewTicker(quietPoll)
	defer tick.Stop()
	for {
		c, err := pidsCPU(pids)
		if err != nil {
			return time.Time{}, 0, false, 0, err
		}
		now := time.Now()
		samples = append(samples, cpuSample{now, c})
		if k, ok := quietStart(samples, quietWindow, cores); ok {
			last := samples[len(samples)-1]
			pct = 100 * (last.cpu - samples[k].cpu).Seconds() / last.at.Sub(samples[k].at).Seconds()
			return samples[k].at, samples[k].cpu, true, pct, nil
		}
		if now.After(limit) {
			return now, c, false, 0, nil
		}
		select {
		case <-ctx.Done():
			return now, c, false, 0, fmt.Errorf("quiet-down: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// quietDeadline is how long the suite waits for the servers to go quiet
// once they have caught up.
func (s *Suite) quietDeadline() time.Duration {
	if s.cfg.Quick {
		return 20 * time.Second
	}
	return 60 * time.Second
}

// nodePids are the processes of the nodes.
func nodePids(nodes []*Node) []int {
	pids := make([]int, len(nodes))
	for i, n := range nodes {
		pids[i] = n.Pid()
	}
	return pids
}

// waitAllIndexed polls every node until each has indexed seq and returns
// when the last one had.
func (s *Suite) waitAllIndexed(ctx context.Context, nodes []*Node, seq uint64, timeout time.Duration) (time.Time, error) {
	limit := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	done := make([]bool, len(nodes))
	var last time.Time
	for {
		all := true
		for i, n := range nodes {
			if done[i] {
				continue
			}
			st, err := n.Self(ctx, s.http)
			now := time.Now()
			if err == nil && st.IndexedSeq >= seq {
				done[i], last = true, now
				continue
			}
			all = false
		}
		if all {
			return last, nil
		}
		if time.Now().After(limit) {
			return time.Time{}, fmt.Errorf("the nodes did not all index seq %d within %s", seq, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("wait for the index: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// drainTheEye measures a load on our nodes that ran from begin to loadEnd
// and stored the seqs after seq0 up to lastSeq: it waits until every node
// has indexed lastSeq, then until the nodes are quiet, and returns the
// sustained figures; cpu0 is the nodes' CPU time at begin.
func (s *Suite) drainTheEye(ctx context.Context, nodes []*Node, begin, loadEnd time.Time, cpu0 time.Duration, seq0, lastSeq uint64) (sustained, error) {
	u := sustained{Events: int64(lastSeq - seq0), LoadS: loadEnd.Sub(begin).Seconds()}
	done, err := s.waitAllIndexed(ctx, nodes, lastSeq, 5*time.Minute)
	if err != nil {
		return u, err
	}
	u.DoneS = done.Sub(begin).Seconds()
	return s.quietDown(ctx, nodePids(nodes), begin, cpu0, u)
}

// quietDown waits until the processes are quiet and completes u.
func (s *Suite) quietDown(ctx context.Context, pids []int, begin time.Time, cpu0 time.Duration, u sustained) (sustained, error) {
	at, cpu, quiet, pct, err := waitQuiet(ctx, pids, s.quietDeadline())
	if err != nil {
		return u, err
	}
	u.QuietS, u.CPU, u.Quiet, u.QuietCPUPct = at.Sub(begin).Seconds(), cpu-cpu0, quiet, pct
	u.QuietS = max(u.QuietS, u.DoneS)
	return u, nil
}

// loadRun is one load whose sustained figures the suite measures.
type loadRun struct {
	drain   bool
	nodes   []*Node
	begin   time.Time
	loadEnd time.Time
	cpu0    time.Duration
	seq0    uint64 // every node had indexed it when the load began
	last    atomic.Uint64
}

// acked notes an acknowledged seq.
func (l *loadRun) acked(seq uint64) {
	for {
		m := l.last.Load()
		if seq <= m || l.last.CompareAndSwap(m, seq) {
			return
		}
	}
}

// startLoad is called right before a load starts (on a cluster at rest:
// after settle).
func (s *Suite) startLoad(ctx context.Context, t target, nodes []*Node) (*loadRun, error) {
	ld := &loadRun{drain: t.drain, nodes: nodes}
	if t.drain {
		// Indexed is not enough: a load must not pay for the flushes and
		// compactions the one before it left (a quick run measured W1 on 3
		// nodes still busy 20 s after W8's load had been indexed).
		if err := s.waitRest(ctx, "our nodes", nodePids(nodes)); err != nil {
			return nil, err
		}
		st, err := nodes[0].Self(ctx, s.http)
		if err != nil {
			return nil, err
		}
		ld.seq0 = st.AppliedSeq
		if ld.cpu0, err = pidsCPU(nodePids(nodes)); err != nil {
			return nil, err
		}
	} else {
		ld.cpu0 = nodeCPU(nodes)
	}
	ld.begin = time.Now()
	return ld, nil
}

// sustainedNote is what the sustained figures of our workloads mean.
const sustainedNote = "events = seq growth over the whole load (warm-up included); indexed_all_nodes_events_per_s = events / (first request → " +
	"the last node's indexed_seq reaches the last acknowledged seq); server_cpu_us_per_event = the nodes' CPU (utime+stime) from the first " +
	"request until they are indexed and quiet (under 3% of a core each for 1 s), per event"

// finishLoad, after the load, waits until every node has indexed what was
// acknowledged and the nodes are quiet, and adds the sustained figures to w.
func (s *Suite) finishLoad(ctx context.Context, ld *loadRun, w Workload) (sustained, error) {
	if !ld.drain || ld.last.Load() <= ld.seq0 {
		return sustained{}, nil
	}
	u, err := s.drainTheEye(ctx, ld.nodes, ld.begin, ld.loadEnd, ld.cpu0, ld.seq0, ld.last.Load())
	if err != nil {
		return u, err
	}
	u.figures(w.Figures, "indexed_all_nodes_events_per_s")
	w.Parameters["sustained"] = sustainedNote
	if !u.Quiet {
		s.note("%s: the nodes were still busy %s after they had indexed everything: CPU counted until then", w.Name(), s.quietDeadline())
	}
	return u, nil
}

// waitRest waits until the processes are quiet before a load (noted when
// they are not within the quiet-down deadline).
func (s *Suite) waitRest(ctx context.Context, who string, pids []int) error {
	t0 := time.Now()
	_, _, quiet, _, err := waitQuiet(ctx, pids, s.quietDeadline())
	if err != nil {
		return err
	}
	if !quiet {
		s.note("%s were still busy %s after the load before this one: this one began anyway", who, time.Since(t0).Round(time.Second))
	}
	return nil
}
