package bench

// goals fills the result's goals from the measured workloads (reported,
// never asserted).
func (s *Suite) goals() { s.res.Goals = Goals(s.res) }

// Goals evaluates the targets against r.
func Goals(r *Result) []Goal {
	type src struct {
		name, id, variant, figure, metric, op string
		target                                float64
		ratio                                 bool
	}
	srcs := []src{
		{"W1 1 node vs HTTP ceiling", "W1", "nodes=1", "", "ratio", ">=", 0.5, true},
		{"W1 3 nodes vs HTTP ceiling", "W1", "nodes=3", "", "ratio", ">=", 0.33, true},
		{"W2 3 nodes throughput", "W2", "nodes=3", "events_per_s", "events/s", ">=", 100_000, false},
		{"W2 3 nodes indexed on all nodes vs NATS JetStream R3 fsync always", "W2", "nodes=3", "vs_nats_ratio", "ratio", ">=", 1.5, false},
		{"W2 3 nodes server CPU per event (all nodes, catch-up included)", "W2", "nodes=3", "server_cpu_us_per_event", "µs", "<=", 25, false},
		{"W3 ack p99 at 5,000/s", "W3", "nodes=3 rate=5000", "p99_ms", "ms", "<=", 5, false},
		{"W3 index lag p99", "W3", "nodes=3 rate=5000", "lag_p99_ms", "ms", "<=", 250, false},
		{"W4 session p50", "W4", "session", "p50_ms", "ms", "<=", 0.2, false},
		{"W4 session p99", "W4", "session", "p99_ms", "ms", "<=", 2, false},
		{"W4 category hour p50", "W4", "category hour", "p50_ms", "ms", "<=", 2, false},
		{"W4 export", "W4", "category day export", "events_per_s", "events/s", ">=", 1_000_000, false},
		{"W8 stats 30 days hourly p99", "W8", "stats 30d hourly", "p99_ms", "ms", "<=", 5, false},
		{"W9 index lag p99 at 2x offered", "W9", "nodes=3 offered=2x", "lag_p99_s", "s", "<=", 5, false},
		{"W9 index lag p99 at 5x offered", "W9", "nodes=3 offered=5x", "lag_p99_s", "s", "<=", 5, false},
		{"W9 acknowledged but lost at 2x", "W9", "nodes=3 offered=2x", "lost_events", "events", "<=", 0, false},
		{"W9 acknowledged but lost at 5x", "W9", "nodes=3 offered=5x", "lost_events", "events", "<=", 0, false},
	}
	var out []Goal
	for _, g := range srcs {
		goal := Goal{Name: g.name, Metric: g.metric, Op: g.op, Target: g.target}
		if w, ok := r.Find(g.id, g.variant); ok {
			v, have := w.Figures[g.figure]
			if g.ratio {
				v, have = w.Ratio, w.Baseline != ""
			}
			goal.Measured, goal.Have = v, have
		}
		goal.Check()
		out = append(out, goal)
	}
	// W6 and W7: the worst node of any measurement.
	w6 := Goal{Name: "W6 disk per event per node", Metric: "bytes", Op: "<=", Target: 150}
	w7 := Goal{Name: "W7 peak RSS per node", Metric: "MiB", Op: "<=", Target: 256}
	for _, w := range r.Workloads {
		if v, ok := w.Figures["max_total_b_per_event_per_node"]; ok && w.ID == "W6" {
			w6.Measured, w6.Have = max(w6.Measured, v), true
		}
		if v, ok := w.Figures["max_peak_rss_mib"]; ok && w.ID == "W7" {
			w7.Measured, w7.Have = max(w7.Measured, v), true
		}
	}
	w6.Check()
	w7.Check()
	return append(out, w6, w7)
}
