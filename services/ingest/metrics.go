package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are ingest's own series, next to the stage runtime's.
type metrics struct {
	runs     *prometheus.CounterVec
	failures *prometheus.CounterVec
	posts    *prometheus.CounterVec
	skipped  *prometheus.CounterVec
	resolves prometheus.Counter
}

// newMetrics registers on reg; a nil reg keeps the series unregistered (tests, tools).
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "channel_runs_total",
			Help: "Channel runs that ended with channels.synced."}, []string{"result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "channel_failures_total",
			Help: "Channel runs that ended with channels.failed, by class (transient, channel, flood), and auth: the session is unusable and ingest stopped."}, []string{"class"}),
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "facts_total",
			Help: "Post and album facts published (parsed, edited, deleted, metrics, album)."}, []string{"fact"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "skipped_total",
			Help: "Messages and media not kept, by reason (service message, too large, policy: sticker, …)."}, []string{"reason"}),
		resolves: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "resolves_total",
			Help: "contacts.resolveUsername calls (each username is resolved once)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.failures, m.posts, m.skipped, m.resolves} {
			// A second ingest service in one process finds them registered: its series
			// then stay unexported rather than failing startup.
			_ = reg.Register(c)
		}
	}
	return m
}
