package index

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the indexer's collectors, one set per Index. Counters count
// what this process indexed; Stats carries the persisted totals.
type metrics struct {
	indexedSeq prometheus.Gauge
	lag        prometheus.GaugeFunc
	events     prometheus.Counter
	duplicates prometheus.Counter
	errors     *prometheus.CounterVec // by reason code: an event with two reasons counts twice
	batch      prometheus.Histogram
	// revalidated counts the failed events revalidations judged again, by
	// outcome (accepted, failing).
	revalidated *prometheus.CounterVec
	ioErrors    prometheus.Counter // batches that failed and are retried
	purged      prometheus.Counter // events whose keys retention deleted
}

func newMetrics(lag func() float64) *metrics {
	m := &metrics{
		indexedSeq: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "theeye_indexer_indexed_seq",
			Help: "Last log seq indexed (committed to the index with its cursor).",
		}),
		lag: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "theeye_indexer_lag",
			Help: "Events in the log not indexed yet (log last seq minus indexed seq).",
		}, lag),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "theeye_indexer_events_total",
			Help: "Valid events indexed.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "theeye_indexer_duplicates_total",
			Help: "Events not indexed because their (app, id) was already indexed.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theeye_indexer_errors_total",
			Help: "Validation failures by reason code (an event failing for two reasons counts for each).",
		}, []string{"reason"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "theeye_indexer_batch_seconds",
			Help:    "Time to read, validate, render and commit one indexer batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms .. ~4 s
		}),
		revalidated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theeye_indexer_revalidated_total",
			Help: "Failed events judged again by revalidation requests, by outcome (accepted, failing).",
		}, []string{"outcome"}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "theeye_indexer_purged_total",
			Help: "Events below the retention cut whose keys the index deleted.",
		}),
		ioErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "theeye_indexer_failed_batches_total",
			Help: "Indexer batches that failed (a full disk, a read error) and are retried with backoff.",
		}),
	}
	for _, c := range reasonCodes {
		m.errors.WithLabelValues(c) // export zeros for every known reason
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.indexedSeq, m.lag, m.events, m.duplicates, m.errors, m.batch, m.revalidated, m.ioErrors, m.purged}
}

// register registers every collector on r, undoing the ones already
// registered when one fails.
func (m *metrics) register(r prometheus.Registerer) error {
	cs := m.collectors()
	for i, c := range cs {
		if err := r.Register(c); err != nil {
			for _, done := range cs[:i] {
				r.Unregister(done)
			}
			return fmt.Errorf("register indexer metrics: %w", err)
		}
	}
	return nil
}

func (m *metrics) unregister(r prometheus.Registerer) {
	for _, c := range m.collectors() {
		r.Unregister(c)
	}
}
