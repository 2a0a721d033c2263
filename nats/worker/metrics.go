package worker

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-stage Prometheus series. One Metrics serves every runner of a process.
type Metrics struct {
	Processed    *prometheus.CounterVec
	Failed       *prometheus.CounterVec
	Retried      *prometheus.CounterVec
	DeadLettered *prometheus.CounterVec
	Published    *prometheus.CounterVec
	Duplicates   *prometheus.CounterVec
	Latency      *prometheus.HistogramVec
	BatchSize    *prometheus.HistogramVec
}

var (
	defaultOnce    sync.Once
	defaultMetrics *Metrics
)

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Processed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "stage", Name: "processed_total",
			Help: "Input messages handled successfully and acknowledged."}, []string{"stage"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "stage", Name: "failed_total",
			Help: "Failures by class: transient, permanent, decode, exhausted (stages); backend, bug (projections)."}, []string{"stage", "class"}),
		Retried: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "stage", Name: "retried_total",
			Help: "Messages negatively acknowledged for a delayed redelivery."}, []string{"stage"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "stage", Name: "dead_lettered_total",
			Help: "Messages sent to the DLQ stream, by class."}, []string{"stage", "class"}),
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "stage", Name: "published_total",
			Help: "Facts published to the log, by event type."}, []string{"stage", "type"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "stage", Name: "duplicates_total",
			Help: "Outputs the log already had (a redelivered input published them again)."}, []string{"stage"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tgflow", Subsystem: "stage", Name: "handler_seconds",
			Help: "Handler (or projection apply) latency.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"stage"}),
		BatchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tgflow", Subsystem: "stage", Name: "batch_size",
			Help: "Messages per processed batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)}, []string{"stage"}),
	}
	reg.MustRegister(m.Processed, m.Failed, m.Retried, m.DeadLettered, m.Published, m.Duplicates, m.Latency, m.BatchSize, breakerCollector{})
	return m
}

// DefaultMetrics are registered once on prometheus.DefaultRegisterer.
func DefaultMetrics() *Metrics {
	defaultOnce.Do(func() { defaultMetrics = NewMetrics(prometheus.DefaultRegisterer) })
	return defaultMetrics
}
