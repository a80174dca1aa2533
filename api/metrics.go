package api

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	rejected       *prometheus.CounterVec
	ingestEvents   prometheus.Counter
	ingestRequests prometheus.Counter
	forwards       *prometheus.CounterVec
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
		ingestEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "theeye_ingest_events_total", Help: "Events acknowledged (202) by this node.",
		}),
		ingestRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "theeye_ingest_requests_total", Help: "Ingest requests acknowledged (202) by this node.",
		}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theeye_http_forwarded_total", Help: "Requests this follower forwarded to the leader, by the leader's status (or error).",
		}, []string{"status"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.rejected, m.ingestEvents, m.ingestRequests, m.forwards)
	}
	return m
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.logger.Warn("metrics", "err", v) }
