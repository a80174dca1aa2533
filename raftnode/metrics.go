package raftnode

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	batchEvents    prometheus.Histogram
	applySeconds   prometheus.Histogram
	entries        prometheus.Counter
	unknownEntries prometheus.Counter
	ioErrors       *prometheus.CounterVec
	leaderChanges  prometheus.Counter
}

func newMetrics(n *Node, reg prometheus.Registerer) *metrics {
	m := &metrics{
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "theeye_ingest_entry_events", Help: "Events per Raft entry (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "theeye_raft_apply_seconds", Help: "Time from raft.Apply to committed and applied on the leader.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		entries:        newCounter("theeye_raft_event_entries_total", "Event entries proposed by this node as leader."),
		unknownEntries: newCounter("theeye_raft_unknown_entries_total", "Committed entries this version could not read and skipped."),
		ioErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theeye_io_errors_total", Help: "Failed writes the node retries, by store (log, state; the indexer's are theeye_indexer_failed_batches_total).",
		}, []string{"store"}),
		leaderChanges: newCounter("theeye_raft_leader_changes_total", "Times this node saw the leader change (itself gaining or losing it, or another node taking over)."),
	}
	for _, store := range []string{"log", "state"} { // retryIO's stores, at 0 from the start (see api/metrics.go)
		m.ioErrors.WithLabelValues(store)
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.batchEvents, m.applySeconds, m.entries, m.unknownEntries, m.ioErrors, m.leaderChanges,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "theeye_raft_applied_seq", Help: "Last seq this node's FSM appended to the log.",
		}, func() float64 { return float64(n.AppliedSeq()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "theeye_raft_is_leader", Help: "1 when this node is the Raft leader.",
		}, func() float64 {
			if n.raft != nil && n.raft.State() == raft.Leader {
				return 1
			}
			return 0
		}),
	)
	return m
}

// newCounter is a plain counter, named and explained.
func newCounter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}
