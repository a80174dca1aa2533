package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// w2Rounds is W2 on the 3-node cluster, W2Rounds times, each round ours
// then NATS JetStream's (when nats-server is there), each from rest: ours
// waits until every node has indexed and gone quiet, NATS until every
// replica has stored and gone quiet, before the other's turn. The NATS
// rounds are a baseline of the result; W2's figures are the medians over
// the rounds, with each round in Rounds.
func (s *Suite) w2Rounds(ctx context.Context, t target, nodes []*Node) (Workload, error) {
	var nc *natsCluster
	if s.cfg.NatsBin == "" {
		s.note("NATS JetStream baseline skipped: no nats-server (make bench builds it: go install github.com/nats-io/nats-server/v2@%s)", natsVersion)
	} else {
		var err error
		if nc, err = s.startNATS(ctx); err != nil {
			s.note("NATS JetStream baseline skipped: %v", err)
			nc = nil
		} else {
			defer nc.stop()
		}
	}
	rounds := max(1, s.cfg.W2Rounds)
	var ours, theirs []Workload
	var rows []map[string]float64
	for r := 1; r <= rounds; r++ {
		s.cfg.Progress(fmt.Sprintf("W2 nodes=3 round %d", r))
		if _, err := s.settle(ctx, nodes); err != nil {
			return Workload{}, err
		}
		w, _, err := s.w2Run(ctx, t, nodes)
		if err != nil {
			return Workload{}, err
		}
		ours = append(ours, w)
		row := map[string]float64{"round": float64(r)}
		for _, k := range []string{"events_per_s", "indexed_all_nodes_events_per_s", "server_cpu_us_per_event", "catch_up_s", "quiet_down_s"} {
			if v, ok := w.Figures[k]; ok {
				row[k] = v
			}
		}
		if nc != nil {
			s.cfg.Progress(fmt.Sprintf("NATS W2 round %d", r))
			nw, _, err := s.natsW2(ctx, nc)
			if err != nil {
				s.note("NATS JetStream baseline, round %d: %v (no more NATS rounds)", r, err)
				nc.stop()
				nc = nil
			} else {
				theirs = append(theirs, nw)
				for _, k := range []string{"events_per_s", "stored_all_replicas_events_per_s", "server_cpu_us_per_event", "catch_up_s", "quiet_down_s"} {
					if v, ok := nw.Figures[k]; ok {
						row["nats_"+k] = v
					}
				}
				if a, b := row["indexed_all_nodes_events_per_s"], row["nats_stored_all_replicas_events_per_s"]; b > 0 {
					row["vs_nats_ratio"] = a / b
				}
				if a, b := row["indexed_all_nodes_events_per_s"], row["nats_events_per_s"]; b > 0 {
					row["vs_nats_acked_ratio"] = a / b
				}
			}
		}
		rows = append(rows, row)
	}
	w := combineRounds(ours, rows, "batch")
	if len(theirs) > 0 {
		nw := combineRounds(theirs, nil, "batch")
		s.res.Baselines = append(s.res.Baselines, nw)
		for _, k := range []string{"vs_nats_ratio", "vs_nats_acked_ratio"} {
			if v, lo, hi, ok := median(rows, k); ok {
				w.Figures[k], w.Figures[k+"_min"], w.Figures[k+"_max"] = v, lo, hi
			}
		}
		w.Parameters["vs_nats"] = "vs_nats_ratio = our indexed_all_nodes_events_per_s / NATS stored_all_replicas_events_per_s " +
			"(the same method: first request → last node / replica has the last acknowledged event), per round, median; " +
			"vs_nats_acked_ratio: against NATS's acknowledged (quorum-stored) rate"
	}
	return w, nil
}

// combineRounds is the median round (by its sustained rate, or its
// acknowledged rate) with the medians over all rounds of the figures the
// rounds share, a _min and _max for the main ones, each round's run
// (runKey round N) and rows as Rounds.
func combineRounds(ws []Workload, rows []map[string]float64, runKey string) Workload {
	key := "indexed_all_nodes_events_per_s"
	if _, ok := ws[0].Figures[key]; !ok {
		key = "stored_all_replicas_events_per_s"
	}
	order := make([]int, len(ws))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := ws[a].Figures[key], ws[b].Figures[key]
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	mid := ws[order[len(order)/2]]
	w := Workload{ID: mid.ID, Variant: mid.Variant, Parameters: map[string]any{}, Figures: map[string]float64{}, Runs: map[string]Stats{}}
	for k, v := range mid.Parameters {
		w.Parameters[k] = v
	}
	w.Parameters["rounds"] = len(ws)
	w.Parameters["figures"] = "medians over the rounds; latency figures from the median round by " + key
	var figs []map[string]float64
	for i, r := range ws {
		figs = append(figs, r.Figures)
		w.Runs[fmt.Sprintf("%s round %d", runKey, i+1)] = r.Runs[runKey]
	}
	for k, v := range mid.Figures {
		w.Figures[k] = v
		if strings.HasSuffix(k, "_ms") {
			continue // the median round's latencies, not a median of percentiles
		}
		if m, lo, hi, ok := median(figs, k); ok {
			w.Figures[k] = m
			if k == key || k == "events_per_s" || k == "server_cpu_us_per_event" {
				w.Figures[k+"_min"], w.Figures[k+"_max"] = lo, hi
			}
		}
	}
	w.Rounds = rows
	return w
}

// median is the median, min and max of figure k over the rows that have it.
func median(rows []map[string]float64, k string) (med, lo, hi float64, ok bool) {
	var vs []float64
	for _, r := range rows {
		if v, have := r[k]; have {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, 0, 0, false
	}
	slices.Sort(vs)
	n := len(vs)
	med = vs[n/2]
	if n%2 == 0 {
		med = (vs[n/2-1] + vs[n/2]) / 2
	}
	return med, vs[0], vs[n-1], true
}

// sustainedTable is the Markdown table of W2's rounds against NATS.
func sustainedTable(ws []Workload) string {
	var b strings.Builder
	for _, w := range ws {
		if len(w.Rounds) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s, sustained, round by round (ours then NATS JetStream R3 sync_interval always, each from rest; "+
			"indexed / stored on all = events ÷ (first request → the last node or replica has the last acknowledged event); "+
			"CPU = all server processes until they are quiet, per event):\n\n", w.Name())
		b.WriteString("| round | ours acked ev/s | ours indexed on all nodes ev/s | ours catch-up s | ours CPU µs/event | NATS acked ev/s | NATS stored on all replicas ev/s | NATS CPU µs/event | ours indexed / NATS |\n")
		b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		rows := append(slices.Clone(w.Rounds), map[string]float64{})
		for _, k := range []string{"events_per_s", "indexed_all_nodes_events_per_s", "catch_up_s", "server_cpu_us_per_event",
			"nats_events_per_s", "nats_stored_all_replicas_events_per_s", "nats_server_cpu_us_per_event", "vs_nats_ratio"} {
			if m, _, _, ok := median(w.Rounds, k); ok {
				rows[len(rows)-1][k] = m
			}
		}
		for i, r := range rows {
			num := func(k string) string {
				if v, ok := r[k]; ok {
					if k == "vs_nats_ratio" {
						return fmt.Sprintf("%.2f×", v)
					}
					return FormatNumber(v)
				}
				return "–"
			}
			label := fmt.Sprintf("%.0f", r["round"])
			if i == len(rows)-1 {
				label = "median"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label, num("events_per_s"), num("indexed_all_nodes_events_per_s"),
				num("catch_up_s"), num("server_cpu_us_per_event"), num("nats_events_per_s"), num("nats_stored_all_replicas_events_per_s"),
				num("nats_server_cpu_us_per_event"), num("vs_nats_ratio"))
		}
	}
	return b.String()
}
