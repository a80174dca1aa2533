package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theeye/theeye"
)

type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	rejected       *prometheus.CounterVec
	ingestEvents   prometheus.Counter
	ingestRequests prometheus.Counter
	forwards       *prometheus.CounterVec

	clusterLagEvents  prometheus.Gauge
	clusterLagSeconds prometheus.Gauge
	diskFree          prometheus.Gauge
	diskTotal         prometheus.Gauge
	diskWatermark     prometheus.Gauge
	diskUsed          *prometheus.GaugeVec
	ready             prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theeye_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "theeye_http_request_seconds", Help: "HTTP request latency by route (ingest: until the ack; queries: until the last byte).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17),
		}, []string{"route", "method"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theeye_http_errors_total", Help: "Error responses by error code.",
		}, []string{"code"}),
		ingestEvents:   newCounter("theeye_ingest_events_total", "Events acknowledged (202) by this node."),
		ingestRequests: newCounter("theeye_ingest_requests_total", "Ingest requests acknowledged (202) by this node."),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theeye_http_forwarded_total", Help: "Requests this follower forwarded to the leader, by the leader's status (or error).",
		}, []string{"status"}),
		clusterLagEvents:  newGauge("theeye_cluster_index_lag_events", "On the leader: the most events a ready member has still to index of what the leader applied (0 on followers)."),
		clusterLagSeconds: newGauge("theeye_cluster_index_lag_seconds", "On the leader: how long ago it applied the oldest event a ready member has not indexed yet (0 on followers)."),
		diskFree:          newGauge("theeye_disk_free_bytes", "Bytes free (available to the node) on the file system of the data dir."),
		diskTotal:         newGauge("theeye_disk_size_bytes", "Bytes of the file system of the data dir."),
		diskWatermark:     newGauge("theeye_disk_min_free_bytes", "The --min-free-disk watermark in force: below it writes are refused (507)."),
		diskUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "theeye_disk_used_bytes", Help: "Bytes each store of the node uses (log, index, raft), measured every 10 s.",
		}, []string{"store"}),
		ready: newGauge("theeye_ready", "1 while /readyz answers 200, 0 while it answers 503 (sampled every 250 ms)."),
	}
	// The codes an operator alerts on exist from the start at 0, so that
	// the first 429, 503, 507 or 500 is an increase (a series born at 1
	// has no earlier sample for rate and increase to compare it with).
	for _, code := range []string{theeye.ERateLimited, theeye.EOverloaded, theeye.EInsufficientStorage, theeye.EUnavailable, theeye.EInternal} {
		m.rejected.WithLabelValues(code)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.rejected, m.ingestEvents, m.ingestRequests, m.forwards,
			m.clusterLagEvents, m.clusterLagSeconds, m.diskFree, m.diskTotal, m.diskWatermark, m.diskUsed, m.ready)
	}
	return m
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.logger.Warn("metrics", "err", v) }

// newCounter and newGauge are the plain metrics, named and explained.
func newCounter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func newGauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}
